"""The host's sense of time, injected (Bytewax's ``now_getter``): tests drive it, workers read the system.

Two readings: ``wall_ms`` (epoch milliseconds: is a record live, what is the live clock) and
``monotonic`` (seconds, only differences count: flush intervals, idle inputs). Event time is not
here: it comes from the records (the watermark, streams/stateful.py).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall_ms(self) -> int:
        """Milliseconds since the epoch."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""


class SystemClock:
    """The machine's clocks."""

    def wall_ms(self) -> int:
        return round(time.time() * 1000)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told (``advance``, ``set_wall_ms``): tests drive time with it."""

    def __init__(self, wall_ms: int = 0, monotonic: float = 0.0) -> None:
        self._wall_ms = wall_ms
        self._monotonic = monotonic

    def wall_ms(self) -> int:
        return self._wall_ms

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._monotonic += seconds
        self._wall_ms += round(seconds * 1000)

    def set_wall_ms(self, wall_ms: int) -> None:
        """Jump the wall clock (forward or back: the machine's wall clock can); the monotonic reading stays."""
        self._wall_ms = wall_ms


SYSTEM = SystemClock()
