"""Replay pacing: as fast as possible, or at a multiple of event time.

With a speedup X, the wall time since the first record is kept at (event time - first
event time) / X: one hour of history takes 1/X hours. The clock and sleep are injectable
so tests check the schedule without waiting. ``max_gap`` caps any one wait (idle stretches of
event time are compressed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from streams.sources.record import SourceRecord


def paced(records: Iterable[SourceRecord], speedup: float | None, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep, max_gap: float | None = None) -> Iterator[SourceRecord]:
    """Yield ``records`` unchanged; with ``speedup``, sleep until each one is due.

    ``speedup=None`` never sleeps. Records without an event time (an unreadable mapped row)
    and records earlier than one already sent go out at once. The schedule starts when the
    first record is requested, so a consumer that falls behind catches up without sleeping.
    ``max_gap`` (wall seconds) compresses idle stretches of event time: no wait between two
    records is longer, and the schedule moves on by what was cut (a history with years of
    near silence then replays its busy days at the speedup, in minutes instead of hours).
    """
    if speedup is not None and not speedup > 0:
        raise ValueError(f"speedup must be a positive number, not {speedup!r}")
    if max_gap is not None and not max_gap >= 0:
        raise ValueError(f"max gap must be zero or more seconds, not {max_gap!r}")
    if speedup is None:
        yield from records
        return
    first_event: float | None = None
    started = 0.0
    for record in records:
        if record.event_time is not None:
            t = record.event_time.timestamp()
            if first_event is None:
                first_event, started = t, clock()
            else:
                wait = started + (t - first_event) / speedup - clock()
                if max_gap is not None and wait > max_gap:
                    started -= wait - max_gap  # the idle stretch is cut: later records keep their spacing
                    wait = max_gap
                if wait > 0:
                    sleep(wait)
        yield record
