"""The features processor: raw records in, customer state updated, late events and profiles out.

This is what a host (the stateful worker, a faust agent, a file replay, a test) calls.
Invalid records are skipped here: the ingestion sink owns dead-lettering them, with
the same validation, so each bad record is reported once.

Timers (``streams/stateful.py`` fires them on the event-time watermark): each customer has
one, at the next time the journey stage can change with no new event (a cart line expires,
the latest order makes the customer at risk, then lapsed: ``FeatureEngine.next_change``).
When it fires, ``due`` moves the customer's clock and the host marks the customer changed,
so the profile re-evaluated as of the latest change point the clock passed goes out with the
next flush, like any other change. A host without timers (the faust host) gives profiles as
of each customer's newest event.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from processors.event_time import Outcome
from processors.features.base import Observed
from processors.features.engine import CustomerState, FeatureEngine
from processors.features.identity import forward, merged_into, on_handoff, on_merge_record
from processors.output import ErasureOutput, Output
from schemas.base import SCHEMA_VERSION
from schemas.identity import IDENTIFIED_PREFIX, PROFILE_HANDOFFS, source_topic
from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
from schemas.registry import IDENTITY_MERGES
from schemas.registry import LATE_EVENTS as LATE_TOPIC
from schemas.validation import Limits, Rejected, validate


def _iso(t_ms: int | None) -> str | None:
    if t_ms is None:
        return None
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def origin_of(state: CustomerState, event: Any) -> str | None:
    """The origin of a resolved event (one read from an ``identified-*`` topic): the subject the identity stage
    re-keyed it from (``resolved_from``), None when that is this customer or the event was not re-keyed.

    Only the identity stage's topics are trusted with it: the stage sets it on what it re-keys and strips it
    from anything else, and on an input topic it is ignored (the processor never calls this there).
    """
    origin = event.resolved_from
    return None if origin is None or origin == state.customer_id else origin


class FeaturesProcessor:
    """Holds no state of its own: the host passes each customer's state in."""

    name = "features"
    #: The optional hooks of the host contract (streams/host/contract.py) it implements; the host checks them.
    host_hooks = ("due", "next_timer", "erase", "last_event_ms", "invalid")

    def __init__(self, engine: FeatureEngine, limits: Limits | None = None,
                 clock_topics: frozenset[str] | None = None) -> None:
        self.engine = engine
        if clock_topics is not None:
            #: The topics whose records carry event time, when not every consumed topic does (with identity
            #: resolution: the resolved inputs, not the identity decisions or retired profiles' handoffs).
            self.clock_topics = clock_topics
            self.host_hooks = (*type(self).host_hooks, "clock_topics")
        self.limits = limits or Limits()
        self.invalid = 0
        #: For a host's event-time watermark: the event time of the record just processed (None: invalid).
        self.last_event_ms: int | None = None

    def new_state(self, key: str) -> CustomerState:
        return self.engine.new_state(key)

    def process(self, state: CustomerState, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        """Apply one record: an input event (on an input or ``identified-*`` topic), or an identity decision
        (``identity-merges``, ``profile-handoffs``: processors/features/identity.py)."""
        if topic in (IDENTITY_MERGES, PROFILE_HANDOFFS):
            self.last_event_ms = None  # no event time: the host's clock does not move
            return on_merge_record(state, value, key) if topic == IDENTITY_MERGES else on_handoff(state, value or b"")
        if state.identity is not None and merged_into(state) is not None:
            self.last_event_ms = None
            return forward(state, topic, value)
        resolved = topic.startswith(IDENTIFIED_PREFIX)
        topic = source_topic(topic)
        try:
            event = validate(topic, value, key, self.limits)
        except Rejected:
            self.invalid += 1
            self.last_event_ms = None
            return []
        seen = Observed.of(topic, event, origin_of(state, event) if resolved else None)
        self.last_event_ms = seen.t_ms
        if self.engine.apply(state, seen) is Outcome.LATE:
            return [(LATE_TOPIC, key, self.late_record(state, seen, value or b""))]
        return []

    def late_record(self, state: CustomerState, seen: Observed, original: bytes) -> bytes:
        """The ``late-events`` record (``schemas.outputs.LateEvent``): why, and the event's original bytes."""
        return orjson.dumps({
            "event_id": seen.event_id, "customer_id": state.customer_id, "source_topic": seen.topic,
            "event_time": _iso(seen.t_ms), "newest_event_time": _iso(state.newest[seen.stream]),
            "allowed_lateness_s": self.engine.config.allowed_lateness_ms / 1000, "reason": "late",
            "processor": self.name, "original": base64.b64encode(original).decode(), "schema_version": SCHEMA_VERSION,
        })

    def due(self, state: CustomerState, now_ms: int) -> list[Output]:
        """The host's clock passed the customer's timer: move its clock (the profile goes out at the flush)."""
        if now_ms > state.clock_ms:
            state.clock_ms = now_ms
        return []

    def next_timer(self, state: CustomerState) -> int | None:
        """When the customer's stage can next change with no new event (ms), or None."""
        return self.engine.next_change(state)

    def profile(self, state: CustomerState) -> dict[str, Any]:
        """The ``customer-features`` record of a state (a ``schemas.outputs.CustomerFeatures``)."""
        values = self.engine.values(state)
        stage, since, segments = values.pop("stage"), values.pop("stage_since_ms"), values.pop("segments")
        events = values.pop("events_total")
        as_of_ms, last_seen_ms = self.engine.as_of(state), values.get("last_seen_ms")
        as_of = _iso(as_of_ms)
        return {
            "customer_id": state.customer_id, "as_of": as_of, "schema_version": SCHEMA_VERSION, "events_total": events,
            "last_seen": as_of if last_seen_ms == as_of_ms else _iso(last_seen_ms), "stage": stage,
            "stage_since": _iso(since), "segments": segments, "features": values,
            **self._retired(state, as_of_ms),
        }

    @staticmethod
    def _retired(state: CustomerState, as_of_ms: int) -> dict[str, Any]:
        """A retired profile's record says where it went, as of the merge (or its newest event, if later):
        a newer version than the profile it replaces (``customer_profiles`` keeps the latest)."""
        into = merged_into(state) if state.identity is not None else None
        if into is None:
            return {}
        return {"merged_into": into, "as_of": _iso(max(as_of_ms, state.identity["merged_at_ms"]))}  # type: ignore[index]

    def erase(self, key: str, state: CustomerState) -> list[ErasureOutput]:
        """Erasure hook (streams/erasure.py): tombstone the customer's record on the compacted profile topic."""
        return [(PROFILE_TOPIC, key.encode(), None)]

    def emit(self, key: str, state: CustomerState) -> list[Output]:
        if state.events == 0:
            return []
        return [(PROFILE_TOPIC, key.encode(), orjson.dumps(self.profile(state)))]
