"""Pacing with a fake clock: sleeps follow event time at the speedup, and never without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.sources.pacing import paced
from streams.sources.record import SourceRecord
from tests.fake_clock import FakeClock

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _records(*offsets: float | None) -> list[SourceRecord]:
    return [SourceRecord("clickstream", b"k", b"{}", None if s is None else T0 + timedelta(seconds=s))
            for s in offsets]


def test_wall_time_follows_event_time_divided_by_the_speedup() -> None:
    clock = FakeClock(100.0)
    records = _records(0, 10, 10, 30, 100)
    assert list(paced(records, 10.0, clock=clock, sleep=clock.sleep)) == records
    assert clock.slept == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(7.0)]
    assert clock.now == pytest.approx(110.0)


def test_no_speedup_never_sleeps() -> None:
    clock = FakeClock(100.0)
    records = _records(0, 3600, 7200)
    assert list(paced(records, None, clock=clock, sleep=clock.sleep)) == records and clock.slept == []


def test_a_slow_consumer_catches_up_without_sleeping() -> None:
    clock = FakeClock(100.0)
    out = []
    for record in paced(_records(0, 1, 2, 3), 1.0, clock=clock, sleep=clock.sleep):
        out.append(record)
        clock.now += 5.0  # the consumer takes 5 s per record: always behind schedule
    assert len(out) == 4 and clock.slept == []


def test_records_without_time_or_out_of_order_go_at_once() -> None:
    clock = FakeClock(100.0)
    records = _records(None, 0, None, -50, 20)
    assert list(paced(records, 2.0, clock=clock, sleep=clock.sleep)) == records
    assert clock.slept == [pytest.approx(10.0)]


@pytest.mark.parametrize("speedup", [0.0, -1.0, float("nan")])
def test_the_speedup_must_be_positive(speedup: float) -> None:
    with pytest.raises(ValueError, match="speedup must be a positive number"):
        list(paced(_records(0), speedup))


def test_max_gap_compresses_idle_stretches_and_keeps_the_rest_of_the_schedule() -> None:
    """Years of near silence (the twcs sample spans 2011-2017) cost at most ``max_gap`` each, not hours."""
    clock = FakeClock(100.0)
    year = 365 * 86400.0
    records = _records(0, 6 * year, 6 * year + 3600, 6 * year + 7200)
    assert list(paced(records, 3600.0, clock=clock, sleep=clock.sleep, max_gap=2.0)) == records
    assert clock.slept == [pytest.approx(2.0), pytest.approx(1.0), pytest.approx(1.0)]
    assert clock.now == pytest.approx(104.0)


def test_the_max_gap_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max gap"):
        list(paced(_records(0), 1.0, max_gap=-1.0))
