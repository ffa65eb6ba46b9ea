"""Waits that follow progress: they fail only after the stall time without any change, never on a clock alone."""

from __future__ import annotations

import pytest

from plumbing.waiting import Stalled, StallWatch, flush_following, retry_until_stalled
from tests.fake_clock import FakeClock


def test_a_watch_fails_only_after_the_stall_time_without_change() -> None:
    clock = FakeClock()
    watch = StallWatch("stored by the sink", 10.0, clock=clock)
    watch.observe(100)
    for remaining in (90, 80, 70, 60, 50):  # 45 s in all, but progress every 9 s
        clock.sleep(9.0)
        assert watch.observe(remaining)
        watch.check()
    clock.sleep(9.9)
    assert not watch.observe(50)
    watch.check()
    clock.sleep(0.1)
    with pytest.raises(Stalled, match=r"stored by the sink: no progress for 10s \(stall_seconds=10\); 50 left"):
        watch.check("50 left")


def test_retry_until_stalled_asks_again_then_gives_up_with_the_last_error() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise TimeoutError(f"slow broker {len(calls)}")
        return "metadata"

    assert retry_until_stalled("metadata", flaky, (TimeoutError,), stall=30.0, pause=0.0) == "metadata"
    assert len(calls) == 4

    def never() -> str:
        raise TimeoutError("slow broker")

    with pytest.raises(Stalled, match=r"metadata: no progress .*last error: slow broker"):
        retry_until_stalled("metadata", never, (TimeoutError,), stall=0.2, pause=0.01)
    with pytest.raises(ValueError):  # not a retried error: raised at once
        retry_until_stalled("metadata", lambda: int("x"), (TimeoutError,), stall=30.0)


class SlowProducer:
    """Acknowledges ``per_flush`` records per flush call (a busy broker), then nothing once ``stuck``."""

    def __init__(self, queued: int, per_flush: int, stuck_at: int = -1) -> None:
        self.queued, self.per_flush, self.stuck_at, self.calls = queued, per_flush, stuck_at, 0

    def flush(self, timeout: float) -> int:
        self.calls += 1
        if self.queued != self.stuck_at:
            self.queued = max(self.queued - self.per_flush, 0)
        return self.queued


def test_a_flush_waits_as_long_as_acknowledgements_come() -> None:
    producer = SlowProducer(queued=1000, per_flush=10)  # 100 one-second flushes: past any fixed 60 s timeout
    assert flush_following(producer, stall=5.0) == 0
    assert producer.calls == 100


def test_a_flush_without_acknowledgements_returns_what_is_left_after_the_stall_time() -> None:
    producer = SlowProducer(queued=1000, per_flush=10, stuck_at=990)
    assert flush_following(producer, stall=0.05) == 990
