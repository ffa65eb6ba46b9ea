"""The stateful host reads time only from its injected clock: a test drives its live clock, its idle
inputs and its flush interval without sleeping (no broker: the worker is never started)."""

from __future__ import annotations

from typing import Any

from streams.host.clock import ManualClock
from streams.stateful import StatefulWorker

HOUR_MS = 3_600_000


class Delayed:
    """A timed processor whose live clock lags the wall clock by a minute (as triggers' does)."""

    last_event_ms: int | None = None

    def new_state(self, key: str) -> list[Any]:
        return []

    def process(self, state: list[Any], topic: str, value: bytes | None, key: bytes | None) -> list[Any]:
        return []

    def emit(self, key: str, state: list[Any]) -> list[Any]:
        return []

    def due(self, state: list[Any], now_ms: int) -> list[Any]:
        return []

    def next_timer(self, state: list[Any]) -> int | None:
        return None

    def live_clock(self, wall_ms: int) -> int:
        return wall_ms - 60_000


def worker(clock: ManualClock) -> StatefulWorker[Any]:
    made: StatefulWorker[Any] = StatefulWorker({"bootstrap.servers": "127.0.0.1:9"}, "g", ["clickstream", "orders"],
                                               "changelog", Delayed(), flush_seconds=1.0, idle_seconds=2.0,
                                               clock=clock)
    made._clock_parts = {("clickstream", 0), ("orders", 0)}
    return made


def test_records_within_the_live_lag_of_the_injected_wall_clock_make_the_clock_live() -> None:
    clock = ManualClock(wall_ms=100 * HOUR_MS, monotonic=10.0)
    host = worker(clock)
    host._observe("clickstream", 0, 98 * HOUR_MS)  # two hours old: a replay
    host._observe("orders", 0, 98 * HOUR_MS + 5)
    assert not host.live and host.clock() == 98 * HOUR_MS
    host._observe("orders", 0, 100 * HOUR_MS - 10)  # within the hour's live lag
    assert host.live
    assert host.clock() == 100 * HOUR_MS - 60_000  # the processor's live clock over the watermark
    clock.advance(600)
    assert host.clock() == 100 * HOUR_MS + 600_000 - 60_000


def test_inputs_at_their_end_for_the_idle_time_of_the_injected_clock_release_the_newest_time() -> None:
    clock = ManualClock(wall_ms=500 * HOUR_MS, monotonic=10.0)
    host = worker(clock)
    host._observe("clickstream", 0, 5_000)
    host._observe("orders", 0, 9_000)
    assert host.clock() == 5_000  # the lowest newest time
    host._at_end = {("clickstream", 0): clock.monotonic(), ("orders", 0): clock.monotonic()}
    clock.advance(1.9)
    assert host.clock() == 5_000  # not idle long enough
    clock.advance(0.2)
    assert host.clock() == 9_000  # every input idle for 2 s: the newest of all


def test_the_flush_interval_follows_the_injected_clock() -> None:
    clock = ManualClock(monotonic=50.0)
    host = worker(clock)
    assert not host.flush_due()
    clock.advance(1.0)
    assert host.flush_due()
