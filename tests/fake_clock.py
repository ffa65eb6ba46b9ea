"""A fake monotonic clock for code that takes ``clock`` and ``sleep`` callables (pure logic: time itself)."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that only moves when slept on (or when told to); sleeps return at once."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
