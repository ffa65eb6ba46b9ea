"""The message processor: triggers in, guards applied and recorded, personalised messages out.

Same shape as the other processors: per-customer :class:`MessageState` passed in by the
host, ``process(state, topic, value, key)`` returning ``(topic, key, value bytes)``
outputs, and timers (``due`` / ``next_timer``) that release messages held back by quiet
hours. Inputs, co-partitioned by customer id:

- ``triggers`` (``schemas.triggers.TriggerEvent``): each one goes through the guards, in
  this order, every outcome recorded on ``message-decisions``: holdout (service triggers
  are exempt, recorded as ``exempt``), cooldown, then
  per channel in the customer's preference order consent and frequency caps (the first
  channel passing both is chosen), then quiet hours (defer, never drop).
- ``consent``: consent per channel and purpose; ``clickstream``: channel habits;
  ``clickstream`` and ``orders``: the recommender learns, recent items, goal events that
  cancel held messages; ``chat``: the customer's language; ``customer-features``: top
  categories, stage and order count. The customer's time zone, for quiet hours, is the
  newest (by event time) ``time_zone`` a clickstream or consent event reported; without
  one, ``[defaults] time_zone``. The locale of a message is the language of the customer's
  newest chat message (its ``language`` field, else detected from the text) when templates
  exist for it; otherwise ``[defaults] locale``. Profiles carry neither.

Every decision happens at the trigger's ``fired_at`` (event time), so a replay makes the
same decisions and the same ids: consent, channel habits, language and time zone are taken as
of that time (a consent change, a click or a chat message dated after the trigger does not
count, even when the host read it first), and the message id derives from the trigger id and
the channel chosen. The recommender is shared by the customers a worker serves (see
``recommend.py``); only its per-customer part is in the state. The shared model lives in the
worker's memory: a restarted worker starts it empty and relearns it from new
events, so recommendations (not decisions or ids) after a restart can differ from those of a
worker that never stopped.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

from pydantic import TypeAdapter, ValidationError

from processors.features.base import Observed
from processors.messages import consent as consents
from processors.messages import habits as channel_habits
from processors.messages.config import MessagesConfig
from processors.messages.frequency import Sent, cap_reached, cooldown_left, prune
from processors.messages.holdout import in_holdout
from processors.messages.quiet_hours import quiet_until, zone
from processors.messages.recommend import KIND_OF_TYPE, Interaction, Recommender
from processors.messages.state import Held, MessageState
from processors.messages.templates import Templates
from processors.output import Output
from processors.sentiment import detect_language
from processors.triggers.ids import derived_id
from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
from schemas.registry import INPUT_TOPICS, OUTPUT_TOPICS
from schemas.registry import MESSAGE_DECISIONS as DECISIONS_TOPIC
from schemas.registry import MESSAGES as MESSAGES_TOPIC
from schemas.registry import TRIGGERS as TRIGGERS_TOPIC
from schemas.triggers import GuardDecision, MessageRecord, TriggerEvent
from schemas.validation import Limits, Rejected, validate

INPUTS = (TRIGGERS_TOPIC, *INPUT_TOPICS, PROFILE_TOPIC)
#: Triggers whose recommendations start with what the customer looked at (reminders).
REMINDERS = frozenset({"cart_abandoned", "browse_abandoned", "checkout_abandoned"})
MAX_SEEN_TRIGGERS = 256
MAX_BOUGHT = 50
#: Language and zone hints kept with their times, per kind (older ones only matter to older triggers).
MAX_HINTS = 8

_TRIGGER = TypeAdapter(TriggerEvent)


def _ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def _timed_habits(state: MessageState) -> list[tuple[int, bool]]:
    """The state's timed clickstream habits (a state pickled before they existed gets an empty list)."""
    try:
        return state.habit_events
    except AttributeError:
        state.habit_events = []
        return state.habit_events


def _timed_hints(state: MessageState) -> dict[str, list[tuple[int, str]]]:
    """The state's timed locale and zone hints (a state pickled before they existed gets an empty dict)."""
    try:
        return state.hints
    except AttributeError:
        state.hints = {}
        return state.hints


class MessagesProcessor:
    """Applies records to customer states; triggers become guard decisions and messages."""

    name = "messages"
    #: The optional hooks of the host contract (streams/host/contract.py) it implements; the host checks them.
    host_hooks = ("due", "next_timer", "clock_topics", "erased_subject", "last_event_ms", "invalid")

    def __init__(self, config: MessagesConfig | None = None, templates: Templates | None = None,
                 recommender: Recommender | None = None, limits: Limits | None = None) -> None:
        self.config = config or MessagesConfig()
        self.templates = templates or Templates(self.config.defaults.locale)
        self.recommender = recommender or Recommender(self.config.recommendations)
        self.limits = limits or Limits()
        quiet = self.config.quiet_hours
        self._quiet = (time.fromisoformat(quiet.start), time.fromisoformat(quiet.end)) if quiet.enabled else None
        self._horizon_ms = max(w for channel in ("email", "push", "in_app", "sms")
                               for _, w in self.config.caps_of(channel) or [(0, 0)])
        self.invalid = 0
        self.outcomes: Counter[tuple[str, str]] = Counter()
        #: For a host's event-time watermark: the input topics, and the event time of the record just processed.
        self.clock_topics = frozenset(INPUT_TOPICS)
        self.last_event_ms: int | None = None
        #: Erased customers (set by the host from its suppression list, streams/erasure.py): their HMAC
        #: subject, None for everyone else. An erased customer is never messaged again.
        self.erased_subject: Callable[[str], str | None] = lambda _customer_id: None

    def new_state(self, key: str) -> MessageState:
        return MessageState(key)

    # -- records in -----------------------------------------------------------------------------
    def process(self, state: MessageState, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        """Apply one record; return decisions and messages made now (held ones leave through ``due``)."""
        self.last_event_ms = None
        if topic in INPUT_TOPICS:
            try:
                event = validate(topic, value, key, self.limits)
            except Rejected:
                self.invalid += 1
                return []
            seen = Observed.of(topic, event)
            self.last_event_ms = seen.t_ms
            return self._event(state, seen)
        try:
            if topic == TRIGGERS_TOPIC:
                record: Any = _TRIGGER.validate_json(value or b"")
            elif topic == PROFILE_TOPIC:
                record = OUTPUT_TOPICS[topic].adapter.validate_json(value or b"")
            else:
                self.invalid += 1
                return []
        except ValidationError:
            self.invalid += 1
            return []
        if record.customer_id != state.customer_id:
            self.invalid += 1
            return []
        if topic == PROFILE_TOPIC:
            self._profile(state, record)
            return []
        return self.decide(state, record)

    def _event(self, state: MessageState, seen: Observed) -> list[Output]:
        t, e = seen.t_ms, seen.event
        state.clock_ms = max(state.clock_ms, t)
        if seen.topic == "consent":
            consents.record(state.consent, e.purpose, e.channel, t, seen.event_id, e.status)
            self._hint(state, "time_zone", e.time_zone, t)
        elif seen.topic == "chat":
            if e.sender_role == "customer":
                self._hint(state, "locale", e.language or detect_language(e.text), t)
        elif seen.topic == "clickstream":
            channel_habits.record(state.habits, e.channel, _timed_habits(state), t)
            self._hint(state, "time_zone", e.time_zone, t)
        kind = KIND_OF_TYPE.get(seen.type)
        if kind == "buy":
            for item in e.items:
                self.recommender.learn(state.recent, Interaction(t, item.product_id, item.category_id, kind))
                state.bought.append(item.product_id)
            del state.bought[:-MAX_BOUGHT]
        elif kind is not None:
            self.recommender.learn(state.recent, Interaction(t, e.product_id, e.category_id, kind))
        return self._goal(state, seen)

    @staticmethod
    def _hint(state: MessageState, name: str, value: str | None, t_ms: int) -> None:
        """Keep a language or zone hint: the newest by event time, and the recent ones with their times."""
        if not value:
            return
        current = getattr(state, name)
        if current is None or t_ms >= current[0]:
            setattr(state, name, (t_ms, value))
        hints = _timed_hints(state).setdefault(name, [])
        bisect.insort(hints, (t_ms, value))
        del hints[:-MAX_HINTS]

    @staticmethod
    def _hint_at(state: MessageState, name: str, t_ms: int) -> str | None:
        """The newest hint at or before ``t_ms`` (a state from before timed hints: the newest of all)."""
        hints = _timed_hints(state).get(name)
        if not hints:
            current = getattr(state, name)
            return current[1] if current else None
        before = [value for t, value in hints if t <= t_ms]
        return before[-1] if before else None

    def _profile(self, state: MessageState, profile: Any) -> None:
        as_of = _ms(profile.as_of)
        if as_of < state.profile_as_of_ms:
            return
        state.profile_as_of_ms = as_of
        features = profile.features
        top = features.get("top_categories")
        state.profile = {"top_categories": [c for c in str(top).split(",") if c] if top else [],
                         "stage": profile.stage, "orders_total": features.get("orders_total")}

    def _goal(self, state: MessageState, seen: Observed) -> list[Output]:
        """Cancel held messages whose trigger's goal happened before they went out."""
        out: list[Output] = []
        for held in list(state.held):
            if seen.type in self.config.goals_of(held.trigger) and held.fired_ms <= seen.t_ms < held.send_ms:
                state.held.remove(held)
                self._withdraw(state, held)
                out.append(self._decision(state.customer_id, held.trigger_id, held.trigger, "goal", "cancelled",
                                          seen.t_ms, held.channel, f"goal event {seen.type} before the deferred send",
                                          message_id=held.message_id))
        return out

    # -- guards ---------------------------------------------------------------------------------
    def decide(self, state: MessageState, trigger: TriggerEvent) -> list[Output]:
        """Guards in order, each recorded; a message (now, or held to the end of quiet hours) if all pass."""
        if trigger.trigger_id in state.seen_triggers:
            return []  # a redelivered trigger: decided already
        t = _ms(trigger.fired_at)
        state.seen_triggers[trigger.trigger_id] = t
        if len(state.seen_triggers) > MAX_SEEN_TRIGGERS:
            state.seen_triggers = dict(sorted(state.seen_triggers.items(), key=lambda kv: kv[1])[-MAX_SEEN_TRIGGERS:])
        # Pruned relative to the trigger's own time (keeping one more horizon for triggers that arrive
        # out of order), never the newest event seen: how far the other topics have run ahead depends
        # on the host's interleaving, and the caps must not.
        state.sent = prune(state.sent, t - self._horizon_ms, self._horizon_ms)
        kind, tid, service = trigger.trigger, trigger.trigger_id, trigger.service
        out: list[Output] = []

        def record(guard: str, outcome: str, detail: str, channel: str | None = None, **extra: Any) -> None:
            out.append(self._decision(state.customer_id, tid, kind, guard, outcome, t, channel, detail, **extra))

        subject = self.erased_subject(state.customer_id)
        if subject is not None:
            # A trigger made before its processor applied the erasure: the block is recorded under the
            # customer's HMAC (as privacy_audit names them), so no table or topic holds the id again.
            return [self._decision(subject, tid, kind, "privacy", "blocked", t, None,
                                   "customer erased: on the suppression list (recorded under the HMAC subject)")]

        holdout = self.config.holdout
        if service:
            # A service escalation (an unhappy customer) must reach an agent: it is not part of the experiment.
            record("holdout", "exempt", "service message: the holdout does not apply")
        elif in_holdout(state.customer_id, holdout.share, holdout.salt):
            record("holdout", "held_out", f"in the holdout group (share {holdout.share})")
            return out
        else:
            record("holdout", "passed", "not in the holdout group")
        left = cooldown_left(state.last_messaged.get(kind), t, self.config.cooldown_ms(kind))
        if left:
            record("cooldown", "blocked", f"cooldown of {self.config.cooldown_ms(kind) // 3_600_000}h for {kind} "
                                          f"has {left / 3_600_000:.1f}h left")
            return out
        record("cooldown", "passed", "no message for this trigger within its cooldown")

        habit = channel_habits.habit(state.habits, _timed_habits(state), t)
        order = self.config.channels.service if service else getattr(self.config.channels, habit)
        tz = zone(self._hint_at(state, "time_zone", t), self.config.defaults.time_zone)
        chosen: tuple[str, int | None] | None = None
        for channel in order:
            verdict, why = consents.verdict(state.consent, channel, service, self.config.consent.assumed_granted, t)
            record("consent", verdict, why, channel)
            if verdict == "blocked":
                continue
            deferred = None
            if self._quiet is not None and channel in self.config.quiet_hours.channels:
                deferred = quiet_until(t, tz, *self._quiet)
            if service:
                record("frequency_cap", "exempt", "service message", channel)
            else:
                cap = cap_reached(state.sent, channel, deferred or t, self.config.caps_of(channel))
                if cap is not None:
                    record("frequency_cap", "blocked", f"cap {cap[0]} per {cap[1] // 3_600_000}h reached", channel)
                    continue
                record("frequency_cap", "passed", "under every cap", channel)
            chosen = channel, deferred
            break
        if chosen is None:
            record("channel", "blocked", f"no channel passed consent and caps (habit {habit})")
            return out
        channel, deferred = chosen
        record("channel", "passed", f"{channel} chosen ({'service' if service else 'habit ' + habit})", channel)
        message_id = derived_id("msg", tid, channel)
        if deferred is not None:
            record("quiet_hours", "deferred", f"quiet hours in {tz.key}", channel, deferred_until=deferred,
                   message_id=message_id)
        elif self._quiet is not None and channel in self.config.quiet_hours.channels:
            record("quiet_hours", "passed", f"outside quiet hours in {tz.key}", channel, message_id=message_id)
        send_ms = deferred if deferred is not None else t
        body = self._message(state, trigger, channel, message_id, send_ms, deferred is not None)
        state.sent.append(Sent(send_ms, channel, kind, message_id))
        previous = state.last_messaged.get(kind)
        state.last_messaged[kind] = t
        if deferred is None:
            out.append((MESSAGES_TOPIC, state.customer_id.encode(), body))
        else:
            state.held.append(Held(deferred, t, kind, tid, channel, message_id, service, body, previous))
        return out

    @staticmethod
    def _withdraw(state: MessageState, held: Held) -> None:
        """A held message that will not go out frees its cap slot and its cooldown."""
        state.sent = [s for s in state.sent if s.message_id != held.message_id]
        if state.last_messaged.get(held.trigger) == held.fired_ms:
            if held.previous_messaged_ms is None:
                del state.last_messaged[held.trigger]
            else:
                state.last_messaged[held.trigger] = held.previous_messaged_ms

    def _decision(self, customer_id: str, trigger_id: str, trigger: str, guard: str, outcome: str, at_ms: int,
                  channel: str | None, detail: str, deferred_until: int | None = None,
                  message_id: str | None = None, phase: str = "") -> Output:
        self.outcomes[(guard, outcome)] += 1
        decision = GuardDecision(
            decision_id=derived_id("dec", trigger_id, guard, channel or "", phase),
            trigger_id=trigger_id, customer_id=customer_id, trigger=trigger,  # type: ignore[arg-type]
            guard=guard, outcome=outcome, channel=channel,  # type: ignore[arg-type]
            decided_at=datetime.fromtimestamp(at_ms / 1000, UTC),
            deferred_until=datetime.fromtimestamp(deferred_until / 1000, UTC) if deferred_until else None,
            detail=detail, message_id=message_id)
        return DECISIONS_TOPIC, customer_id.encode(), decision.__pydantic_serializer__.to_json(decision)

    # -- messages -------------------------------------------------------------------------------
    def _message(self, state: MessageState, trigger: TriggerEvent, channel: str, message_id: str, send_ms: int,
                 deferred: bool) -> bytes:
        kind = trigger.trigger
        locale = self.templates.locale_for(self._hint_at(state, "locale", _ms(trigger.fired_at)))
        categories = state.profile.get("top_categories") or Recommender.categories_of(state.recent)
        recommendations: list[str] = []
        if not trigger.service:
            exclude = set(trigger.products) | set(state.bought)
            recommendations = self.recommender.recommend(
                state.recent, self.config.defaults.recommendations, exclude, categories,
                extra_seeds=tuple(trigger.products), touched_first=kind in REMINDERS)
        base = self.config.defaults.base_url.rstrip("/")
        variables = {
            "products": list(trigger.products), "recommendations": recommendations, "service": trigger.service,
            "context": dict(trigger.context), "top_categories": categories, "base_url": base,
            "history": trigger.history.model_dump(mode="json") if trigger.history else None,
            "url": lambda product: f"{base}/p/{product}",
        }
        rendered = self.templates.render(kind, channel, locale, variables)
        message = MessageRecord(
            message_id=message_id, trigger_id=trigger.trigger_id, customer_id=state.customer_id,
            channel=channel,  # type: ignore[arg-type]
            template=rendered.template, locale=locale, subject=rendered.subject if channel == "email" else None,
            title=rendered.subject if channel in ("push", "in_app") else None, body=rendered.body,
            send_at=datetime.fromtimestamp(send_ms / 1000, UTC), recommendations=recommendations,
            trigger=kind, service=trigger.service, deferred=deferred)
        return message.__pydantic_serializer__.to_json(message)

    # -- timers ---------------------------------------------------------------------------------
    def due(self, state: MessageState, now_ms: int) -> list[Output]:
        """Release held messages whose send time is before ``now_ms``, re-checking marketing consent."""
        out: list[Output] = []
        for held in sorted((h for h in state.held if h.send_ms < now_ms), key=lambda h: (h.send_ms, h.message_id)):
            state.held.remove(held)
            verdict, why = consents.verdict(state.consent, held.channel, held.service,
                                            self.config.consent.assumed_granted, held.send_ms)
            if verdict == "blocked":
                self._withdraw(state, held)
                out.append(self._decision(state.customer_id, held.trigger_id, held.trigger, "consent", "blocked",
                                          held.send_ms, held.channel, f"at release: {why}", message_id=held.message_id,
                                          phase="release"))
                continue
            out.append((MESSAGES_TOPIC, state.customer_id.encode(), held.record))
        return out

    def next_timer(self, state: MessageState) -> int | None:
        return min((h.send_ms for h in state.held), default=None)

    def emit(self, key: str, state: MessageState) -> list[Output]:
        """Nothing is coalesced per flush (the host's Processor protocol)."""
        return []


__all__ = ["DECISIONS_TOPIC", "INPUTS", "MESSAGES_TOPIC", "MessagesProcessor"]
