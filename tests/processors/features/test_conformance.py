"""The check suite every feature definition passes: picklable state, deterministic replay,
and order independence within the allowed lateness (the same values whatever the arrival order)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from processors.features.base import Feature, Observed
from processors.features.config import FeatureConfig
from processors.features.engine import FeatureEngine, default_features
from processors.features.segments import load_segments
from tests.processors.features.events import journey_events, shuffled_within, toy_scorer

CONFIG = FeatureConfig()
FEATURES = default_features(CONFIG, toy_scorer, -0.05)


def run(feature: Feature, events: list[Observed]) -> dict[str, Any]:
    """Per customer: the feature's state after the events, and its values as of the newest event."""
    states: dict[str, Any] = {}
    newest: dict[str, int] = {}
    for e in events:
        if e.topic not in feature.topics:
            continue
        customer = e.event.customer_id
        states[customer] = feature.update(states.get(customer) or feature.init(), e)
        newest[customer] = max(newest.get(customer, 0), e.t_ms)
    return {c: (s, newest[c]) for c, s in states.items()}


def values_of(feature: Feature, run_result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c: feature.values(s, t) for c, (s, t) in run_result.items()}


@pytest.fixture(scope="module")
def events() -> list[Observed]:
    return journey_events(seed=5)


def test_the_events_exercise_every_feature(events: list[Observed]) -> None:
    for feature in FEATURES:
        assert any(e.topic in feature.topics for e in events), feature.name


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_state_pickles(feature: Feature, events: list[Observed]) -> None:
    result = run(feature, events)
    restored = {c: (pickle.loads(pickle.dumps(s)), t) for c, (s, t) in result.items()}
    assert values_of(feature, restored) == values_of(feature, result)
    # a state restored mid-stream and fed the rest ends where the uninterrupted run does
    half = len(events) // 2
    states = {c: pickle.loads(pickle.dumps(s)) for c, (s, _) in run(feature, events[:half]).items()}
    newest: dict[str, int] = {c: t for c, (_, t) in run(feature, events[:half]).items()}
    for e in events[half:]:
        if e.topic in feature.topics:
            customer = e.event.customer_id
            states[customer] = feature.update(states.get(customer) or feature.init(), e)
            newest[customer] = max(newest.get(customer, 0), e.t_ms)
    assert {c: feature.values(s, newest[c]) for c, s in states.items()} == values_of(feature, result)


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_replay_is_deterministic(feature: Feature, events: list[Observed]) -> None:
    assert values_of(feature, run(feature, events)) == values_of(feature, run(feature, events))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_order_independent_within_lateness(feature: Feature, events: list[Observed], seed: int) -> None:
    shuffled = shuffled_within(events, CONFIG.allowed_lateness_ms // 2, seed)
    assert shuffled != events, "the shuffle reorders something"
    assert values_of(feature, run(feature, shuffled)) == values_of(feature, run(feature, events))


@pytest.mark.parametrize("seed", [1, 2])
def test_whole_profile_is_order_independent_within_lateness(events: list[Observed], seed: int) -> None:
    engine = FeatureEngine(CONFIG, FEATURES, load_segments())

    def profiles(stream: list[Observed]) -> dict[str, dict[str, Any]]:
        states: dict[str, Any] = {}
        for e in stream:
            customer = e.event.customer_id
            state = states.get(customer) or states.setdefault(customer, engine.new_state(customer))
            engine.apply(state, e)
        return {c: engine.values(s) for c, s in states.items()}

    in_order = profiles(events)
    assert profiles(shuffled_within(events, CONFIG.allowed_lateness_ms // 2, seed)) == in_order
    assert all(p["late_events"] == 0 for p in in_order.values())


def test_late_events_go_to_the_side_and_duplicates_count_once(events: list[Observed]) -> None:
    engine = FeatureEngine(CONFIG, FEATURES)
    customer = events[0].event.customer_id
    mine = [e for e in events if e.event.customer_id == customer and e.topic == "clickstream"]
    state = engine.new_state(customer)
    outcomes = [engine.apply(state, e).value for e in mine]
    assert set(outcomes) == {"applied"}
    assert engine.apply(state, mine[-1]).value == "duplicate"
    # Still remembered: a duplicate, however far older than the lateness (processors/event_time.py).
    assert engine.apply(state, mine[0]).value == "duplicate"
    unseen = dataclasses.replace(mine[0], event_id=f"{mine[0].event_id}-unseen")
    assert engine.apply(state, unseen).value == "late", "as old as the first event, never seen: late"
    assert state.late == 1 and state.events == len(mine)
