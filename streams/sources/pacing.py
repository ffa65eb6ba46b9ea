"""Replay pacing: as fast as possible, or at a multiple of event time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from streams.sources.record import SourceRecord


def paced(records: Iterable[SourceRecord], speedup: float | None, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[SourceRecord]:
    """Yield ``records``; with ``speedup`` X, one hour of event time takes 1/X hours of wall time."""
    if speedup is not None and speedup <= 0:
        raise ValueError("speedup must be positive")
    first_event: float | None = None
    started = clock()
    for record in records:
        if speedup is not None and record.event_time is not None:
            t = record.event_time.timestamp()
            if first_event is None:
                first_event = t
            due = started + (t - first_event) / speedup
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        yield record
