"""Restored states share their names: each changelog record is unpickled on its own, names are interned."""

from __future__ import annotations

import pickle

from processors.features.build import build_features
from tests.processors.features.events import journey_events


def test_two_restored_customers_share_topic_type_and_catalogue_names() -> None:
    processor = build_features()
    states = {}
    for seen in journey_events(seed=5, customers=2):
        state = states.setdefault(seen.event.customer_id, processor.new_state(seen.event.customer_id))
        processor.engine.apply(state, seen)
        state.applied[seen.topic] = state.events
    a, b = (pickle.loads(pickle.dumps(s, pickle.HIGHEST_PROTOCOL)) for s in states.values())
    assert [processor.profile(s) for s in (a, b)] == [processor.profile(s) for s in states.values()]
    for field in ("newest", "applied"):
        shared = getattr(a, field).keys() & getattr(b, field).keys()
        assert "clickstream" in shared
        ka, kb = ({k: k for k in getattr(s, field)} for s in (a, b))
        assert all(ka[k] is kb[k] for k in shared), field
    topics_a = {topic for _, topic in a.recent_ids.values()}
    topics_b = {id(topic) for _, topic in b.recent_ids.values()}
    assert {id(t) for t in topics_a} & topics_b
    kinds = a.features["activity"].lifetime.keys() & b.features["activity"].lifetime.keys()
    la, lb = ({k: k for k in s.features["activity"].lifetime} for s in (a, b))
    assert kinds and all(la[k] is lb[k] for k in kinds)
    cats = a.features["preferences"].categories.keys() & b.features["preferences"].categories.keys()
    ca, cb = ({k: k for k in s.features["preferences"].categories} for s in (a, b))
    assert cats and all(ca[k] is cb[k] for k in cats)
