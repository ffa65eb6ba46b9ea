"""Lateness per origin stream (issue 22): events the identity stage re-keyed onto a customer are checked against
the newest time of their own origin, not of the customer's own events, through the real features processor."""

from __future__ import annotations

import base64
import pickle
from datetime import UTC, datetime

import orjson

from processors.event_time import stream_of
from processors.features.base import Observed
from processors.features.build import build_features
from processors.features.engine import CustomerState
from processors.features.identity import forward
from processors.features.processor import FeaturesProcessor
from processors.output import Output
from schemas.identity import identified
from schemas.registry import IDENTITY_MERGES, LATE_EVENTS
from tests.processors.features.events import observe
from tests.processors.features.test_identity_merge import Host

ORDERS = identified("orders")
HOUR_MS = 3_600_000
#: build_features' default allowed lateness (1 h), the one the pipeline runs with.
LATENESS_MS = HOUR_MS


def _order(event_id: str, customer: str, day: int, hour: int = 10, origin: str | None = None,
           anonymous: str | None = None) -> bytes:
    body = {"event_id": event_id, "customer_id": customer, "event_time": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
            "type": "order_placed", "order_id": f"o-{event_id}", "amount": 10.0, "currency": "BRL"}
    if origin is not None:
        body["resolved_from"] = origin
    if anonymous is not None:
        body["anonymous_id"] = anonymous
    return orjson.dumps(body)


def _ms(day: int, hour: int = 10) -> int:
    return (1_772_323_200 + (day - 1) * 86_400 + hour * 3600) * 1000  # 2026-03-01T00:00Z + day and hour


def _feed(processor: FeaturesProcessor, state: CustomerState, topic: str, value: bytes) -> list[Output]:
    return processor.process(state, topic, value, state.customer_id.encode())


def test_the_processor_built_for_these_tests_allows_one_hour() -> None:
    assert build_features().engine.config.allowed_lateness_ms == LATENESS_MS


def test_two_origins_interleaved_days_apart_are_all_applied() -> None:
    """Olist's repeat buyer: the person's first order id is the profile, each later order id an origin whose
    events arrive re-keyed in the broker's interleaving, days behind the profile's newest event."""
    processor = build_features()
    state = processor.new_state("c-1")
    arrivals = [_order("own-1", "c-1", 20), _order("a2-1", "c-1", 3, origin="a-2"),
                _order("a3-1", "c-1", 9, origin="a-3"), _order("own-2", "c-1", 21),
                _order("a2-2", "c-1", 4, origin="a-2"), _order("a3-2", "c-1", 9, hour=11, origin="a-3")]
    outputs = [out for value in arrivals for out in _feed(processor, state, ORDERS, value)]
    assert outputs == []
    assert (state.events, state.late) == (6, 0)
    assert state.features["orders"].orders == 6
    assert state.newest == {"orders": _ms(21), stream_of("orders", "a-2"): _ms(4),
                            stream_of("orders", "a-3"): _ms(9, 11)}


def test_an_origin_out_of_its_own_order_beyond_the_lateness_is_still_late() -> None:
    processor = build_features()
    state = processor.new_state("c-1")
    assert _feed(processor, state, ORDERS, _order("own-1", "c-1", 1)) == []  # the profile's own: older still
    assert _feed(processor, state, ORDERS, _order("a2-1", "c-1", 5, origin="a-2")) == []
    [(topic, key, late)] = _feed(processor, state, ORDERS, _order("a2-2", "c-1", 5, hour=8, origin="a-2"))
    assert (topic, key, state.events, state.late) == (LATE_EVENTS, b"c-1", 2, 1)
    record = orjson.loads(late)
    assert record["newest_event_time"] == "2026-03-05T10:00:00Z"  # its origin's newest, not the profile's
    assert record["event_time"] == "2026-03-05T08:00:00Z" and record["source_topic"] == "orders"
    assert orjson.loads(base64.b64decode(record["original"]))["resolved_from"] == "a-2"
    # Within the lateness of its own origin it is applied; a duplicate id is one whatever the origin.
    assert _feed(processor, state, ORDERS, _order("a2-3", "c-1", 5, hour=9, origin="a-2")) == []
    assert _feed(processor, state, ORDERS, _order("a2-3", "c-1", 5, hour=9)) == []
    assert (state.events, state.late) == (3, 1)


def test_the_profiles_own_events_are_late_against_its_own_newest_only() -> None:
    processor = build_features()
    state = processor.new_state("c-1")
    _feed(processor, state, ORDERS, _order("a2-1", "c-1", 20, origin="a-2"))
    _feed(processor, state, ORDERS, _order("own-1", "c-1", 2))  # days behind a-2's: its own stream is new
    [(topic, _, _)] = _feed(processor, state, ORDERS, _order("own-2", "c-1", 1))
    assert (topic, state.events, state.late) == (LATE_EVENTS, 2, 1)


def test_resolved_from_naming_the_profile_itself_is_its_own_stream() -> None:
    processor = build_features()
    state = processor.new_state("c-1")
    _feed(processor, state, ORDERS, _order("own-1", "c-1", 9, origin="c-1"))
    assert state.newest == {"orders": _ms(9)}


def test_resolved_from_on_an_input_topic_is_not_trusted() -> None:
    """A producer cannot choose its event's lateness bound: on an input topic (no identity stage) ``resolved_from``
    is ignored, and the event is checked against the customer's own stream (the identity stage strips it too:
    tests/streams/test_identity_resolved.py)."""
    processor = build_features()
    state = processor.new_state("c-1")
    _feed(processor, state, "orders", _order("own-1", "c-1", 9))
    [(topic, _, late)] = _feed(processor, state, "orders", _order("spoof", "c-1", 2, origin="x-1"))
    assert (topic, state.events, state.late) == (LATE_EVENTS, 1, 1)
    assert orjson.loads(late)["newest_event_time"] == "2026-03-09T10:00:00Z"
    assert state.newest == {"orders": _ms(9)}


def _merge_record(retired: str, into: str, day: int) -> bytes:
    return orjson.dumps({"record_id": f"m-{retired}", "action": "merged", "reason": "identify",
                         "from_kind": "anonymous_id", "from_id": retired, "into_id": into, "event_id": f"e-{retired}",
                         "event_time": f"2026-03-{day:02d}T12:00:00Z", "schema_version": 1})


def test_a_merge_does_not_move_the_survivors_own_stream() -> None:
    """The retired profile's events (days after the survivor's) go over under its origin: the survivor's own next
    event, minutes after its previous one, is on time."""
    host = Host()
    host.feed(ORDERS, "c-1", _order("own-1", "c-1", 2))
    host.feed(ORDERS, "a-1", _order("a1-1", "a-1", 10, anonymous="a-1"))
    host.feed(ORDERS, "a-1", _order("a1-2", "a-1", 11, anonymous="a-1"))
    host.feed(IDENTITY_MERGES, "a-1", _merge_record("a-1", "c-1", 11))
    survivor = host.states["c-1"]
    assert survivor.newest == {"orders": _ms(2), stream_of("orders", "a-1"): _ms(11)}
    assert survivor.recent_ids["a1-2"] == (_ms(11), stream_of("orders", "a-1"))
    host.feed(ORDERS, "c-1", _order("own-2", "c-1", 2, hour=11))
    # a-1's next event, re-keyed by the stage (resolved_from a-1), is checked against a-1's stream: late.
    host.feed(ORDERS, "c-1", _order("a1-3", "c-1", 9, origin="a-1"))
    assert (survivor.events, survivor.late) == (4, 1)
    assert host.profiles["c-1"]["features"]["orders_total"] == 4  # type: ignore[index]


def test_a_merged_state_keeps_the_origins_it_had_itself() -> None:
    """A chain: a-2's events were re-keyed to a-1, then a-1 merged into c-1; they stay a-2's stream, and the
    ids are pruned against the streams they now name."""
    engine = build_features().engine
    host = Host()
    host.feed(ORDERS, "a-1", _order("a2-1", "a-1", 5, origin="a-2"))
    host.feed(ORDERS, "a-1", _order("a1-1", "a-1", 1, anonymous="a-1"))
    host.feed(IDENTITY_MERGES, "a-1", _merge_record("a-1", "c-1", 6))
    survivor = host.states["c-1"]
    assert survivor.newest == {stream_of("orders", "a-2"): _ms(5), stream_of("orders", "a-1"): _ms(1)}
    for i in range(300):  # enough new ids to prune: the old ones named streams that exist
        assert engine.apply(survivor, _observed(f"own-{i}", _ms(20) + i * 60_000)).value == "applied"
    assert "own-0" not in survivor.recent_ids and "own-299" in survivor.recent_ids  # pruned: it ran
    assert {"a2-1", "a1-1"} <= survivor.recent_ids.keys()  # each the newest of its own stream
    assert {stream for _, stream in survivor.recent_ids.values()} == survivor.newest.keys()


def _observed(event_id: str, t_ms: int) -> Observed:
    """A page view of the customer's own (its own clickstream stream)."""
    when = datetime.fromtimestamp(t_ms / 1000, UTC).isoformat()
    return observe({"event_id": event_id, "customer_id": "c-1", "event_time": when, "type": "page_view"})


def test_a_forwarded_event_keeps_its_origin_or_takes_the_retired_profiles() -> None:
    processor = build_features()
    retired = processor.new_state("a-1")
    retired.identity = {"merged_into": "c-1", "merged_at_ms": _ms(6)}
    [(topic, key, own)] = forward(retired, ORDERS, _order("a1-9", "a-1", 3, anonymous="a-1"))
    [(_, _, other)] = forward(retired, ORDERS, _order("a2-9", "a-1", 3, origin="a-2"))
    assert (topic, key) == (ORDERS, b"c-1")
    assert orjson.loads(own)["resolved_from"] == "a-1" and orjson.loads(own)["customer_id"] == "c-1"
    assert orjson.loads(other)["resolved_from"] == "a-2"


def test_an_event_forwarded_days_behind_the_survivor_is_counted() -> None:
    """An anonymous visitor's event that reached its profile after the merge, forwarded to the survivor whose own
    newest event is days later: applied (before the fix, late)."""
    host = Host()
    host.feed(ORDERS, "a-1", _order("a1-1", "a-1", 2, anonymous="a-1"))
    host.feed(IDENTITY_MERGES, "a-1", _merge_record("a-1", "c-1", 3))
    host.feed(ORDERS, "c-1", _order("own-1", "c-1", 20))
    host.feed(ORDERS, "a-1", _order("a1-2", "a-1", 3, anonymous="a-1"))  # forwarded to c-1
    survivor = host.states["c-1"]
    assert (survivor.events, survivor.late) == (3, 0)
    assert host.profiles["c-1"]["features"]["orders_total"] == 3  # type: ignore[index]


#: A CustomerState pickled by the code before origins (commit 32c4ef4): c-1 with its own orders on
#: 2026-03-08 and 2026-03-09 at 10:00, read from ``orders``.
OLD_STATE = base64.b64decode(
    "gAWV8QEAAAAAAACMGnByb2Nlc3NvcnMuZmVhdHVyZXMuZW5naW5llIwIX3Jlc3RvcmWUk5QojANjLTGUfZSMBm9yZGVyc5SKBgANCtKcAXN9lCiM"
    "BW93bi0wlIoGALHjzJwBaAWGlIwFb3duLTGUigYADQrSnAFoBYaUdYoGAA0K0pwBSwJLAH2UKIwIYWN0aXZpdHmUjA1BY3Rpdml0eVN0YXRllCh9"
    "lH2UfZSPlChNKFBNKVCQigYAsePMnAGKBgANCtKcAUsgdJSGlIwIc2Vzc2lvbnOUjAxTZXNzaW9uU3RhdGWUXZRLAEsAh5SGlIwEY2FydJSMCUNh"
    "cnRTdGF0ZZRdlIoGAA0K0pwBToeUhpRoBYwLT3JkZXJzU3RhdGWUKEsCTdAHSwKKBgCx48ycAYoGAA0K0pwBfZQoTShQXZQoSwFN6ANlTSlQXZQo"
    "SwFN6ANldUsASwBLAEsATnSUhpSMC2FjcXVpc2l0aW9ulIwKVG91Y2hTdGF0ZZQoigYAsePMnAFoB4wDd2VilE50lIWUhpSMC3ByZWZlcmVuY2Vz"
    "lIwPUHJlZmVyZW5jZVN0YXRllH2UfZRNKVCHlIaUjAdzZXJ2aWNllIwMU2VydmljZVN0YXRllChLAEsAj5R9lH2UXZRLAHSUhpR1fZRNAAFLAE50"
    "lFKULg==")


def test_a_state_pickled_before_origins_loads_and_one_with_origins_round_trips() -> None:
    """Its topics are its own streams: an own order days back is late, a re-keyed one of another origin applied,
    and the state with that origin stream pickles and restores as it was."""
    processor = build_features()
    old = pickle.loads(OLD_STATE)
    assert (old.customer_id, old.events, old.newest) == ("c-1", 2, {"orders": _ms(9)})
    assert old.recent_ids == {"own-0": (_ms(8), "orders"), "own-1": (_ms(9), "orders")}
    [(topic, _, _)] = _feed(processor, old, ORDERS, _order("own-2", "c-1", 2))
    assert topic == LATE_EVENTS
    assert _feed(processor, old, ORDERS, _order("a2-1", "c-1", 2, origin="a-2")) == []
    assert _feed(processor, old, ORDERS, _order("own-1", "c-1", 9)) == []  # a duplicate still
    assert (old.events, old.late, old.features["orders"].orders) == (3, 1, 3)
    restored = pickle.loads(pickle.dumps(old, pickle.HIGHEST_PROTOCOL))
    assert (restored.newest, restored.recent_ids) == (old.newest, old.recent_ids)
    assert restored.recent_ids["a2-1"] == (_ms(2), stream_of("orders", "a-2"))
