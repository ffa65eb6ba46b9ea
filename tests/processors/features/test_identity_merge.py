"""Folding a retired profile into the canonical customer: which features merge exactly, and the route
through the features processor (merge record, handoff, forwarded events) in every order."""

from __future__ import annotations

import itertools
import pickle

import orjson
import pytest

from processors.event_time import stream_of
from processors.features.build import build_features
from processors.features.engine import CustomerState
from processors.features.merge import MERGES, merge_states
from schemas.identity import IDENTIFIED_PREFIX, PROFILE_HANDOFFS, identified
from schemas.registry import IDENTITY_MERGES
from tests.processors.features.events import journey_events

EXACT = ("activity", "orders", "acquisition")


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", EXACT)
def test_each_exact_feature_merges_to_the_state_of_the_union_of_both_streams(seed: int, name: str) -> None:
    engine = build_features().engine
    events = journey_events(seed, customers=2)
    mine = [e for e in events if e.event.customer_id == "cust-0"]
    theirs = [e for e in events if e.event.customer_id == "cust-1"]
    assert mine and theirs
    union = engine.new_state("cust-0")
    for seen in sorted(events, key=lambda e: (e.t_ms, e.event_id)):
        engine.apply(union, seen)
    canonical, retired = engine.new_state("cust-0"), engine.new_state("cust-1")
    for seen in mine:
        engine.apply(canonical, seen)
    for seen in theirs:
        engine.apply(retired, seen)
    assert name in merge_states(canonical, retired)
    feature = next(f for f in engine.features if f.name == name)
    t = engine.as_of(union)
    assert engine.as_of(canonical) == t
    assert feature.values(canonical.features[name], t) == feature.values(union.features[name], t)
    assert (canonical.events, canonical.late) == (union.events, union.late)
    # Each stream keeps its origin: the canonical customer's own topics, and the retired one's under its id.
    own = {topic: max(e.t_ms for e in mine if e.topic == topic) for topic in {e.topic for e in mine}}
    retired_own = {stream_of(topic, "cust-1"): max(e.t_ms for e in theirs if e.topic == topic)
                   for topic in {e.topic for e in theirs}}
    assert canonical.newest == {**own, **retired_own}


def test_the_exact_merges_are_the_ones_documented() -> None:
    assert tuple(MERGES) == EXACT


def _view(event_id: str, customer: str, minute: int, anonymous: str | None = None) -> bytes:
    body = {"event_id": event_id, "customer_id": customer, "event_time": f"2026-03-01T10:{minute:02d}:00Z",
            "type": "product_view", "product_id": "p1"}
    if anonymous is not None:
        body["anonymous_id"] = anonymous
    return orjson.dumps(body)


MERGE = orjson.dumps({"record_id": "e-id#1", "action": "merged", "reason": "identify", "from_kind": "anonymous_id",
                      "from_id": "a-1", "into_id": "c-1", "event_id": "e-id", "event_time": "2026-03-01T10:03:00Z",
                      "schema_version": 1})
TOPIC = identified("clickstream")


class Host:
    """A minimal keyed host: one state per key, outputs to features topics fed back in (like the worker)."""

    def __init__(self) -> None:
        self.processor = build_features()
        self.states: dict[str, CustomerState] = {}
        self.profiles: dict[str, dict[str, object]] = {}

    def feed(self, topic: str, key: str, value: bytes) -> None:
        state = self.states.setdefault(key, self.processor.new_state(key))
        for out_topic, out_key, out_value in self.processor.process(state, topic, value, key.encode()):
            if out_topic.startswith(IDENTIFIED_PREFIX) or out_topic == PROFILE_HANDOFFS:
                assert out_key is not None
                self.feed(out_topic, out_key.decode(), out_value)
        for _, _, out_value in self.processor.emit(key, state):
            self.profiles[key] = orjson.loads(out_value)


RECORDS = {
    "anonymous views": [(TOPIC, "a-1", _view(f"v{i}", "a-1", i, "a-1")) for i in range(3)],
    "merge": [(IDENTITY_MERGES, "a-1", MERGE)],
    "customer views": [(TOPIC, "c-1", _view(f"v{i}", "c-1", i)) for i in range(4, 6)],
}


@pytest.mark.parametrize("order", list(itertools.permutations(RECORDS)))
def test_five_views_count_once_in_the_customer_whatever_the_order(order: tuple[str, ...]) -> None:
    host = Host()
    for group in order:
        for topic, key, value in RECORDS[group]:
            host.feed(topic, key, value)
            if group == "merge":
                host.feed(topic, key, value)  # redelivered after a restart: nothing counts twice
    customer = host.profiles["c-1"]
    assert customer["features"]["product_views_total"] == 5  # type: ignore[index]
    assert customer["events_total"] == 5 and "merged_into" not in customer
    retired = host.profiles.get("a-1")
    if order.index("anonymous views") < order.index("merge"):
        assert retired is not None and retired["merged_into"] == "c-1"
        assert retired["as_of"] == "2026-03-01T10:03:00Z"  # the merge: newer than its last view (10:02)
    assert host.states["a-1"].identity == {"merged_into": "c-1", "merged_at_ms": 1772359380000}


def test_a_handoff_delivered_twice_is_merged_once() -> None:
    host = Host()
    for topic, key, value in RECORDS["anonymous views"]:
        host.feed(topic, key, value)
    state = host.states["a-1"]
    outputs = host.processor.process(state, IDENTITY_MERGES, MERGE, b"a-1")
    assert [(t, k) for t, k, _ in outputs] == [(PROFILE_HANDOFFS, b"c-1")]
    for _ in range(2):
        host.feed(PROFILE_HANDOFFS, "c-1", outputs[0][2])
    assert host.profiles["c-1"]["features"]["product_views_total"] == 3  # type: ignore[index]
    assert pickle.loads(outputs[0][2])[0] == "e-id#1"



def test_anonymous_views_sent_again_to_the_retired_profile_count_once() -> None:
    """The identity stage re-reads what it had not committed when it crashed, with its graph restored past the
    merge: it sends a-1's views again, keyed to the retired a-1 (graph.Resolution.via). a-1 drops the ones it
    counted (they went over in its handoff): forwarded, they could reach c-1 before the handoff (another topic)
    and count twice there."""
    host = Host()
    for topic, key, value in RECORDS["anonymous views"]:
        host.feed(topic, key, value)
    (handoff,) = host.processor.process(host.states["a-1"], IDENTITY_MERGES, MERGE, b"a-1")
    again = [out for _, key, value in RECORDS["anonymous views"]
             for out in host.processor.process(host.states["a-1"], TOPIC, value, key.encode())]
    assert again == []
    for topic, key, value in [*again, handoff]:  # what a-1 sent, in the order c-1 may read it
        host.feed(topic, key.decode(), value)
    assert host.profiles["c-1"]["events_total"] == 3


def test_a_new_event_of_a_retired_profile_is_forwarded_and_counted() -> None:
    host = Host()
    for group in ("anonymous views", "merge", "customer views"):
        for topic, key, value in RECORDS[group]:
            host.feed(topic, key, value)
    host.feed(TOPIC, "a-1", _view("v9", "a-1", 9, "a-1"))  # the cookie again, after the login
    assert host.profiles["c-1"]["events_total"] == 6
