"""The activity state's flat buckets: same values, a third of the memory, and states saved before them still load."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from processors.features.activity import KIND_INDEX, STRIDE, Activity, ActivityState
from processors.features.base import Observed, minute_of
from processors.features.build import build_features
from processors.features.config import FeatureConfig
from tests.bench.state_size import deep_size
from tests.processors.features.events import journey_events

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _seen(kind: str, minutes: float, i: int) -> Observed:
    t = T0 + timedelta(minutes=minutes)
    return Observed("clickstream", kind, f"e{i}", round(t.timestamp() * 1000), None)


def test_a_customer_with_ten_events_in_ten_minutes_holds_under_2_kb_of_activity() -> None:
    """Measured: 3,931 bytes with a dict per minute and per hour bucket, 1,751 with the flat buckets."""
    activity = Activity(FeatureConfig())
    state = activity.init()
    for i in range(10):
        state = activity.update(state, _seen("page_view" if i % 2 else "product_view", i * 7, i))
    assert deep_size(state, set()) < 2000
    assert activity.values(state, _seen("page_view", 63, 99).t_ms)["page_views_1h"] == 5


def test_a_state_saved_with_a_dict_per_bucket_loads_into_flat_buckets_with_the_same_values() -> None:
    activity = Activity(FeatureConfig())
    t = _seen("page_view", 0, 0).t_ms
    minute = minute_of(t)
    hour = minute // 60
    old = ActivityState({"page_view": 3, "promo_click": 1},
                        {minute: {"page_view": 2, "promo_click": 1}, minute - 90: {"page_view": 1}},
                        {hour: {"page_view": 2, "promo_click": 1}, hour - 2: {"page_view": 1}}, {minute // 1440}, t, t)
    assert old.minutes == {minute * STRIDE + KIND_INDEX["page_view"]: 2,
                           (minute - 90) * STRIDE + KIND_INDEX["page_view"]: 1}
    values = activity.values(old, t)
    assert (values["page_views_1h"], values["page_views_24h"], values["page_views_7d"],
            values["page_views_total"]) == (2, 3, 3, 3)


def test_a_whole_customer_state_pickles_and_restores_the_flat_buckets() -> None:
    processor = build_features()
    state = processor.new_state("cust-0")
    for seen in journey_events(seed=3, customers=1):
        processor.engine.apply(state, seen)
    assert state.events > 50 and state.features["activity"].minutes
    again = pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
    assert again.features["activity"].minutes == state.features["activity"].minutes
    assert processor.profile(again) == processor.profile(state)
