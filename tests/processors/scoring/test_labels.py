"""Label timing: horizons in event time, orders strictly after the prediction, no leakage into the inputs."""

from __future__ import annotations

import bisect
from collections import defaultdict
from math import log1p

import orjson

from processors.scoring.labels import CustomerScoring, Held, expire, hold, on_order, seen_profile
from processors.scoring.replay import ReplayResult
from streams.sources.generator import Generator
from streams.sources.record import SourceRecord
from tests.processors.scoring.conftest import CONFIG

H = 24 * 3_600_000


def held(model: str = "purchase_propensity", t: int = 1_000_000) -> Held:
    return Held(model, t, t + H, {"a": 1.0}, 0.5, 0.5, 0)


def test_an_order_at_the_prediction_time_does_not_decide_it_one_inside_the_horizon_does_at_its_end() -> None:
    state = CustomerScoring("c")
    seen_profile(state, 1_000_000)
    assert hold(state, held()) == []
    assert on_order(state, 1_000_000) == []  # already in the profile
    assert on_order(state, 1_000_000 + H) == []  # the horizon's end is inside: recorded, not released
    assert state.held[0].ordered_ms == 1_000_000 + H
    assert expire(state, 1_000_000 + H) == []  # released only once the watermark passed the horizon
    labels = expire(state, 1_000_000 + H + 1)
    assert [(lb.label, lb.labelled_at_ms, lb.record()["ordered_at_ms"]) for lb in labels] == [
        (True, 1_000_000 + H, 1_000_000 + H)]
    assert state.held == []


def test_an_order_after_the_horizon_does_not_label_and_the_watermark_past_it_gives_a_negative() -> None:
    state = CustomerScoring("c")
    seen_profile(state, 1_000_000)
    hold(state, held())
    assert on_order(state, 1_000_000 + H + 1) == []
    assert expire(state, 1_000_000 + H) == []  # the watermark has not passed the horizon yet
    labels = expire(state, 1_000_000 + H + 1)
    assert [(lb.label, lb.labelled_at_ms) for lb in labels] == [(False, 1_000_000 + H)]


def test_churn_labels_are_the_opposite_outcome_and_both_come_at_the_horizons_end() -> None:
    state = CustomerScoring("c")
    seen_profile(state, 0)
    hold(state, held("churn", 0))
    hold(state, held("churn", 10 * H))
    assert on_order(state, H // 2) == []  # came back: recorded on the first prediction only
    assert expire(state, H // 2 + 1) == []  # no early release of the "came back" label
    assert [(lb.label, lb.labelled_at_ms) for lb in expire(state, 12 * H)] == [(False, H), (True, 11 * H)]


def test_an_order_seen_before_the_profile_it_follows_decides_the_prediction_held_later() -> None:
    state = CustomerScoring("c")
    seen_profile(state, 100)
    on_order(state, 5000)  # the scorer read the order before the profile as of 1000
    on_order(state, 50)  # older than the newest profile: not kept
    assert state.early_orders == [5000]
    seen_profile(state, 1000)
    assert hold(state, held(t=1000)) == []
    seen_profile(state, 5000)
    assert state.early_orders == []
    assert hold(state, held(t=5000)) == []  # the same order cannot decide a prediction made at its time
    labels = expire(state, 5000 + H + 1)
    assert [(lb.held.t_ms, lb.label, lb.labelled_at_ms) for lb in labels] == [(1000, True, 1000 + H),
                                                                           (5000, False, 5000 + H)]


def _orders_by_customer(records: list[SourceRecord]) -> dict[str, list[int]]:
    orders: dict[str, list[int]] = defaultdict(list)
    for record in records:
        if record.topic == "orders" and b'"order_placed"' in record.value:
            value = orjson.loads(record.value)
            assert record.event_time is not None
            orders[value["customer_id"]].append(round(record.event_time.timestamp() * 1000))
    return {c: sorted(ts) for c, ts in orders.items()}


def test_every_replayed_label_agrees_with_the_raw_orders_and_inputs_stop_at_the_prediction(
        replayed: ReplayResult, traffic: tuple[list[SourceRecord], Generator]) -> None:
    orders = _orders_by_customer(traffic[0])
    assert {s.model for s in replayed.samples} == {"purchase_propensity", "churn"}
    for s in replayed.samples:
        times = orders.get(s.customer_id, [])
        horizon = CONFIG.horizon_ms(s.model)
        first_after = bisect.bisect_right(times, s.predicted_at_ms)
        ordered = first_after < len(times) and times[first_after] <= s.predicted_at_ms + horizon
        assert s.label == (ordered if s.model == "purchase_propensity" else not ordered), s
        # Both outcomes are released at the horizon's end: the same label latency for both classes.
        assert s.labelled_at_ms == s.predicted_at_ms + horizon
        # The inputs count exactly the orders up to the prediction time, none after it.
        assert s.x["orders_total" if s.model == "purchase_propensity" else "frequency_log"] == log1p(first_after)
        if s.model == "churn":
            assert first_after >= CONFIG.churn.min_orders


def test_a_horizon_expires_only_once_the_watermark_passed_it_and_each_prediction_is_labelled_once(
        replayed: ReplayResult, traffic: tuple[list[SourceRecord], Generator]) -> None:
    records = traffic[0]
    last = max(round(r.event_time.timestamp() * 1000) for r in records if r.event_time is not None)
    watermark = last - CONFIG.labels.lateness_ms
    for model in ("purchase_propensity", "churn"):  # both classes of both models were released
        assert {s.label for s in replayed.samples if s.model == model} == {True, False}
    assert all(s.labelled_at_ms < watermark for s in replayed.samples)
    keys = [(s.customer_id, s.model, s.predicted_at_ms) for s in replayed.samples]
    assert len(keys) == len(set(keys))
