"""Scores follow time: a customer who goes quiet is re-scored on the timers' schedule, with ages of then."""

from __future__ import annotations

from datetime import UTC, datetime
from math import log1p
from pathlib import Path

import orjson

from processors.scoring.labels import CustomerScoring
from processors.scoring.processor import ScoringProcessor
from processors.scoring.replay import replay
from processors.scoring.rescore import aged, next_rescore
from streams.sources import open_source
from tests.processors.scoring.conftest import CONFIG
from tests.processors.scoring.test_replay_expiry import MAPPING, purchases

HOUR, DAY = 3_600_000, 86_400_000


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_the_schedule_is_one_and_six_hours_after_the_profile_then_every_day() -> None:
    times, t = [], 0
    for _ in range(5):
        t = next_rescore(0, t, DAY)
        times.append(t)
    assert times == [HOUR, 6 * HOUR, DAY, 2 * DAY, 3 * DAY]
    assert next_rescore(0, 10 * DAY + 5, DAY) == 11 * DAY


def test_aging_a_profile_recounts_order_windows_and_empties_passed_windows() -> None:
    profile = {"as_of": "x", "features": {"orders_30d": 2, "orders_total": 2, "product_views_24h": 5,
                                          "product_views_7d": 9, "last_order_ms": 0}}
    later = aged(profile, 0, 40 * DAY, orders=[0, 20 * DAY])["features"]
    assert later == {"orders_30d": 1, "orders_total": 2, "product_views_24h": 0, "product_views_7d": 0,
                     "last_order_ms": 0}
    assert aged(profile, 0, 2 * DAY, orders=[0])["features"]["product_views_7d"] == 9  # window not passed


def test_a_quiet_customer_is_rescored_every_day_with_ages_computed_at_the_scoring_time(tmp_path: Path) -> None:
    rows = [("a", "2024-01-01 10:00:00", 10.0)] + [("b", f"2024-01-{d:02d} 12:00:00", 5.0) for d in range(1, 21)]
    records, _ = open_source(f"csv:{purchases(tmp_path, rows)}", mapping=MAPPING)
    result = replay(records, CONFIG)
    t0, end = ms("2024-01-01 10:00:00"), ms("2024-01-20 12:00:00")
    expected = [t0, t0 + HOUR, t0 + 6 * HOUR, *range(t0 + DAY, end, DAY)]
    for model in ("churn", "purchase_propensity"):
        times = [ms(s["scored_at"][:-1]) for s in result.scores if s["customer_id"] == "a" and s["model"] == model]
        assert times == expected, model
    # Held churn predictions: one a week (hold_every), their inputs aged to the prediction time.
    watermark = end - CONFIG.labels.lateness_ms
    churn = [s for s in result.samples if s.customer_id == "a" and s.model == "churn"]
    week = CONFIG.churn.hold_every_ms
    assert [s.predicted_at_ms for s in churn] == [t for t in range(t0, end, week) if t + CONFIG.churn.horizon_ms
                                                  < watermark]
    assert len(churn) == 2 and all(s.label for s in churn)  # never came back
    for s in churn:
        hours = (s.predicted_at_ms - t0) / HOUR
        # the churn inputs: days since the last (and only) order, and as long a tenure, at the prediction time
        assert s.x["recency_log"] == log1p(hours / 24) == s.x["tenure_log"]
        assert s.x["frequency_log"] == log1p(1) and s.x["single_order"] == 1.0


def test_the_processor_names_its_timer_and_fires_it_only_once_the_clock_passed() -> None:
    scoring = ScoringProcessor(CONFIG)
    state = CustomerScoring("c")
    profile = {"customer_id": "c", "as_of": "2024-02-01T10:00:00Z", "events_total": 3,
               "features": {"orders_total": 1, "last_order_ms": ms("2024-02-01 10:00:00")}}
    assert len(scoring.process(state, "customer-features", orjson.dumps(profile), b"c")) == 2
    t0 = ms("2024-02-01 10:00:00")
    late = CONFIG.labels.lateness_ms  # the host calls due once its clock is past the time plus the lateness
    assert scoring.next_timer(state) == t0 + HOUR + late
    assert scoring.due(state, t0 + HOUR + late) == []  # not before the clock
    fired = scoring.due(state, t0 + 2 * DAY + late + 1)
    assert [orjson.loads(v)["scored_at"] for topic, _, v in fired if topic == "scores"][::2] == [
        "2024-02-01T11:00:00.000Z", "2024-02-01T16:00:00.000Z", "2024-02-02T10:00:00.000Z",
        "2024-02-03T10:00:00.000Z"]
    assert scoring.next_timer(state) == t0 + 3 * DAY + late


def test_a_profile_first_rescores_what_is_due_before_it_and_never_goes_back_to_a_time_rescored() -> None:
    scoring = ScoringProcessor(CONFIG)
    state = CustomerScoring("c")
    t0 = ms("2024-02-01 10:00:00")

    def profile(at: str, orders: int) -> bytes:
        return orjson.dumps({"customer_id": "c", "as_of": at, "events_total": 3 + orders,
                             "features": {"orders_total": orders, "last_order_ms": t0}})

    def times(outputs: list[tuple[str, bytes | None, bytes]]) -> list[str]:
        return [orjson.loads(v)["scored_at"] for topic, _, v in outputs if topic == "scores"][::2]

    scoring.process(state, "customer-features", profile("2024-02-01T10:00:00Z", 1), b"c")
    # A profile two days later, before the host's clock fired anything: the re-scorings due before it first.
    out = scoring.process(state, "customer-features", profile("2024-02-03T12:00:00Z", 2), b"c")
    assert times(out) == ["2024-02-01T11:00:00.000Z", "2024-02-01T16:00:00.000Z", "2024-02-02T10:00:00.000Z",
                          "2024-02-03T10:00:00.000Z", "2024-02-03T12:00:00.000Z"]
    # The host fires the timers up to 2024-02-04 13:00 (the profile's 1 h, 6 h and 1 day).
    assert times(scoring.due(state, ms("2024-02-04 13:00:00") + CONFIG.labels.lateness_ms + 1)) == [
        "2024-02-03T13:00:00.000Z", "2024-02-03T18:00:00.000Z", "2024-02-04T12:00:00.000Z"]
    # A profile older than the last re-scoring (out of order in the stream): scored, and the schedule moves on
    # from the last re-scoring (12:00), never back to a time already scored: its 1 h (10:00) has passed, 6 h next.
    scoring.process(state, "customer-features", profile("2024-02-04T09:00:00Z", 3), b"c")
    assert scoring.next_timer(state) == ms("2024-02-04 15:00:00") + CONFIG.labels.lateness_ms
