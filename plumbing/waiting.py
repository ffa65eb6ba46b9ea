"""Waits that follow progress: a slow machine makes a wait longer, never a failure.

A fixed deadline ("committed offsets in 10 s") turns a loaded machine into a failed run.
Every wait in ``journey run`` and its workers instead watches something that moves (a count
still falling, records still arriving) and fails only when nothing has moved for
``stall_seconds`` (the ``stall_seconds`` setting), with a message that says what stalled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar

#: The default of the ``stall_seconds`` setting: how long a wait lets nothing happen before it fails.
DEFAULT_STALL_SECONDS = 300.0
_configured: list[float] = [DEFAULT_STALL_SECONDS]
#: The timeout of one request for committed offsets or metadata: short, so the caller checks its
#: workers often; a request that times out is asked again (the wait as a whole follows progress).
REQUEST_SECONDS = 2.0

T = TypeVar("T")


def configure(stall_seconds: float) -> None:
    """Set this process's stall time (the ``stall_seconds`` setting; ``journey run`` and each worker call it)."""
    _configured[0] = stall_seconds


def stall_seconds(given: float | None = None) -> float:
    """``given``, or this process's configured stall time."""
    return _configured[0] if given is None else given


class Stalled(TimeoutError):
    """Nothing progressed for the allowed stall time; the message says what was awaited."""


class StallWatch:
    """Remembers when the watched state last changed; :meth:`check` fails once it has not for too long."""

    def __init__(self, what: str, stall: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.stall_seconds, self._clock = what, stall_seconds(stall), clock
        self._state: Hashable = object()
        self._since = clock()

    def observe(self, state: Hashable) -> bool:
        """Record the current state (a count, a set of offsets); True when it differs from the last one."""
        if state != self._state:
            self._state, self._since = state, self._clock()
            return True
        return False

    def still(self) -> float:
        """Seconds since the state last changed."""
        return self._clock() - self._since

    def check(self, detail: str = "") -> None:
        """Raise :class:`Stalled` when the state has not changed for ``stall_seconds``."""
        if self.still() >= self.stall_seconds:
            raise Stalled(f"{self.what}: no progress for {self.still():.0f}s (stall_seconds={self.stall_seconds:g})"
                          + (f"; {detail}" if detail else ""))


def retry_until_stalled(what: str, attempt: Callable[[], T], retry_on: tuple[type[BaseException], ...],
                        stall: float | None = None, pause: float = 0.5,
                        between: Callable[[], None] | None = None) -> T:
    """``attempt()`` again after each ``retry_on`` error, until it succeeds or ``stall_seconds`` have passed.

    For calls whose own timeout a loaded machine can exceed (metadata, committed offsets): the
    call keeps a short timeout, and the wait as a whole ends only after ``stall_seconds``.
    ``between`` runs after each failure (e.g. to check that the workers are still alive).
    """
    watch = StallWatch(what, stall)
    while True:
        try:
            return attempt()
        except retry_on as exc:
            watch.check(f"last error: {exc}")
            if between is not None:
                between()
            time.sleep(pause)


class Flushable(Protocol):
    def flush(self, timeout: float) -> int: ...


def flush_following(producer: Flushable, stall: float | None = None,
                    between: Callable[[], None] | None = None) -> int:
    """Flush a confluent-kafka producer for as long as acknowledgements keep coming.

    Returns what is still unacknowledged (0: all) once nothing was acknowledged for the stall
    time, instead of giving up after a fixed timeout on a machine that is only slow.
    """
    watch = StallWatch("producer flush", stall)
    while True:
        remaining = producer.flush(1.0)
        if remaining == 0:
            return 0
        watch.observe(remaining)
        if watch.still() >= watch.stall_seconds:
            return remaining
        if between is not None:
            between()
