"""The trigger processor: events, profiles and scores in; triggers out, now or when a timer matures.

Same shape as ``FeaturesProcessor``: it holds no customer state; the host passes each
customer's :class:`TriggerState` in (picklable, for a changelog) and produces the outputs,
``(topic, key, value bytes)``. Inputs:

- ``clickstream``, ``orders``, ``chat``, ``consent``: validated with
  ``schemas.validation.validate`` (invalid ones are skipped and counted: the ingestion
  sink owns dead-lettering them); late events (older than the newest of their topic
  minus the allowed lateness) and duplicate ids are ignored.
- ``customer-features`` (``schemas.outputs.CustomerFeatures``): the newest profile
  (by ``as_of``) completes history summaries and "has ordered".
- ``scores`` (``schemas.outputs.Score``): band crossings (high intent, churn risk).

Timers: absence rules arm timers in the state; :meth:`TriggersProcessor.due` fires
those whose deadline is before ``now_ms``. The host calls it with the event-time
watermark in a replay and with :meth:`TriggersProcessor.live_clock` of the wall clock
when live, and keeps a timer heap from :meth:`TriggersProcessor.next_timer`.
``process`` itself never fires a timer, so the result does not depend on how the host
interleaves its clock with a customer's events.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from typing import Any

from processors.event_time import Outcome, admit
from processors.features.base import Observed
from processors.output import Output
from processors.sentiment import sentiment
from processors.triggers.config import RulesConfig
from processors.triggers.history import observe, summary
from processors.triggers.records import Fired, encode, trigger_record
from processors.triggers.rules import Rule, default_rules
from processors.triggers.rules.base import fire_timer
from processors.triggers.state import TriggerState
from processors.triggers.timers import matured, next_deadline
from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
from schemas.registry import INPUT_TOPICS, OUTPUT_TOPICS
from schemas.registry import SCORES as SCORES_TOPIC
from schemas.registry import TRIGGERS as TRIGGERS_TOPIC
from schemas.validation import Limits, Rejected, validate

#: Everything the processor reads (co-partitioned by customer id).
INPUTS = (*INPUT_TOPICS, PROFILE_TOPIC, SCORES_TOPIC)
#: The profile fields kept per customer (the rest of a profile is not needed here).
PROFILE_FIELDS = ("orders_total", "revenue_total", "average_order_value", "sentiment_7d", "orders_refunded",
                  "orders_cancelled", "unresolved_conversations", "top_categories")
#: Profiles' order counts kept per customer, newest last (for 'had ordered by then' after a newer profile).
MAX_PROFILES_SEEN = 16

Scorer = Callable[[str, str | None], float]


class TriggersProcessor:
    """Applies records to customer states and turns fired rules into ``triggers`` records."""

    name = "triggers"
    #: The optional hooks of the host contract (streams/host/contract.py) it implements; the host checks them.
    host_hooks = ("due", "next_timer", "live_clock", "clock_topics", "last_event_ms", "invalid")

    def __init__(self, config: RulesConfig | None = None, rules: list[Rule] | None = None,
                 limits: Limits | None = None, scorer: Scorer = sentiment) -> None:
        self.config = config or RulesConfig()
        self.rules = rules if rules is not None else default_rules(self.config)
        self.limits = limits or Limits()
        self.scorer = scorer
        self._by_topic: dict[str, list[Rule]] = {t: [r for r in self.rules if t in r.topics] for t in INPUT_TOPICS}
        self._by_trigger: dict[str, Rule] = {r.name: r for r in self.rules}
        self._unhappy = self.config.unhappy_customer
        self.invalid = 0
        self.late = 0
        self.fired: Counter[str] = Counter()
        #: For a host's event-time watermark: the input topics, and the event time of the record just processed.
        self.clock_topics = frozenset(INPUT_TOPICS)
        self.last_event_ms: int | None = None

    def new_state(self, key: str) -> TriggerState:
        return TriggerState(key, rules={rule.name: rule.init() for rule in self.rules})

    # -- records in -----------------------------------------------------------------------------
    def process(self, state: TriggerState, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        """Apply one record; return the triggers that fire at once (timers fire through ``due``)."""
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
        if topic in (PROFILE_TOPIC, SCORES_TOPIC):
            record = self._output_record(topic, value, key, state.customer_id)
            if record is None:
                return []
            if topic == PROFILE_TOPIC:
                self._profile(state, record)
                return []
            return self._score(state, record)
        self.invalid += 1
        return []

    def _output_record(self, topic: str, value: bytes | None, key: bytes | None, customer_id: str) -> Any:
        try:
            record = OUTPUT_TOPICS[topic].adapter.validate_json(value or b"")
        except ValueError:
            self.invalid += 1
            return None
        if record.customer_id != customer_id or (key is not None and key.decode("utf-8", "replace") != customer_id):
            self.invalid += 1
            return None
        return record

    def _event(self, state: TriggerState, seen: Observed) -> list[Output]:
        outcome = admit(state, seen.topic, seen.t_ms, seen.event_id, self.config.lateness_ms)
        if outcome is Outcome.LATE:
            state.late += 1
            self.late += 1
        if outcome is not Outcome.APPLIED:
            return []
        state.clock_ms = max(state.clock_ms, seen.t_ms)
        score = None
        if seen.type == "chat_message" and seen.event.sender_role == "customer":
            score = self.scorer(seen.event.text, seen.event.language)
        observe(state.history, seen, score)
        fired: list[Fired] = []
        for rule in self._by_topic[seen.topic]:
            fired.extend(rule.on_event(state, seen))
        return self._records(state, fired)

    def _profile(self, state: TriggerState, profile: Any) -> None:
        as_of = round(profile.as_of.timestamp() * 1000)
        bisect.insort(state.profile_orders_seen, (as_of, int(profile.features.get("orders_total") or 0)))
        del state.profile_orders_seen[:-MAX_PROFILES_SEEN]
        if as_of < state.profile_as_of_ms:
            return
        state.profile_as_of_ms = as_of
        features = profile.features
        state.profile = {name: features.get(name) for name in PROFILE_FIELDS if name in features}
        state.profile["stage"] = profile.stage
        state.profile["segments"] = list(profile.segments)

    def _score(self, state: TriggerState, score: Any) -> list[Output]:
        mark = (round(score.scored_at.timestamp() * 1000), score.score_id)
        previous = state.scores.get(score.model)
        if previous is not None and mark <= previous[:2]:
            return []
        state.scores[score.model] = (*mark, score.band)
        previous_band = previous[2] if previous is not None else None
        fired: list[Fired] = []
        for rule in self.rules:
            fired.extend(rule.on_score(state, score, previous_band))
        return self._records(state, fired)

    # -- timers ---------------------------------------------------------------------------------
    def due(self, state: TriggerState, now_ms: int) -> list[Output]:
        """Fire the customer's timers whose deadline is before ``now_ms`` (watermark or live clock)."""
        fired = []
        for timer in matured(state.timers, now_ms):
            rule = self._by_trigger.get(timer.trigger)
            outcome = rule.on_timer(state, timer) if rule is not None else fire_timer(timer)
            if outcome is not None:
                fired.append(outcome)
        return self._records(state, fired)

    def next_timer(self, state: TriggerState) -> int | None:
        """The earliest pending deadline (ms): call ``due`` once the host's clock is past it."""
        return next_deadline(state.timers)

    def live_clock(self, wall_ms: int) -> int:
        """The clock a live host passes to ``due``: wall time less ``live_delay`` (stragglers can still cancel)."""
        return wall_ms - self.config.live_delay_ms

    def emit(self, key: str, state: TriggerState) -> list[Output]:
        """Nothing is coalesced per flush: triggers leave as they fire (the host's Processor protocol)."""
        return []

    # -- records out ----------------------------------------------------------------------------
    def _records(self, state: TriggerState, fired: list[Fired]) -> list[Output]:
        out: list[Output] = []
        key = state.customer_id.encode()
        for f in fired:
            history = None
            if f.with_history:
                history = summary(state.history, state.profile, self._unhappy.history_orders,
                                  self._unhappy.sentiment_trend, self._unhappy.negative_below)
            out.append((TRIGGERS_TOPIC, key, encode(trigger_record(state.customer_id, f, history))))
            state.fired += 1
            self.fired[f.trigger] += 1
        return out
