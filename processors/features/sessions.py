"""Sessions: clickstream events split at ``session_gap`` of inactivity (event time).

The recent clickstream times are kept sorted; sessions that end more than
lateness + gap before the newest clickstream event can no longer change, so they are
folded into counters. Values: sessions so far, the current (latest) session's length
and depth, and how many sessions were bounces (a single event).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.features.base import Observed
from processors.features.config import FeatureConfig


@dataclass(slots=True)
class SessionState:
    recent: list[int] = field(default_factory=list)  # sorted clickstream times (ms) not yet closed
    closed: int = 0
    closed_bounces: int = 0


def split(times: list[int], gap: int) -> list[tuple[int, int, int]]:
    """Sessions of sorted ``times`` as (start, end, events)."""
    sessions: list[tuple[int, int, int]] = []
    start = prev = times[0]
    count = 0
    for t in times:
        if t - prev > gap:
            sessions.append((start, prev, count))
            start, count = t, 0
        prev = t
        count += 1
    sessions.append((start, prev, count))
    return sessions


class Sessions:
    name: ClassVar[str] = "sessions"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream"})

    def __init__(self, config: FeatureConfig) -> None:
        self.gap = config.session_gap_ms
        self.lateness = config.allowed_lateness_ms

    def init(self) -> SessionState:
        return SessionState()

    def update(self, state: SessionState, seen: Observed) -> SessionState:
        bisect.insort(state.recent, seen.t_ms)
        # Close sessions a future on-time event (>= newest - lateness) can no longer reach.
        horizon = state.recent[-1] - self.lateness - self.gap
        if len(state.recent) > 64 and state.recent[0] < horizon:
            sessions = split(state.recent, self.gap)
            keep_from = 0
            for _, end, events in sessions[:-1]:
                if end >= horizon:
                    break
                state.closed += 1
                state.closed_bounces += events == 1
                keep_from += events
            state.recent = state.recent[keep_from:]
        return state

    def values(self, state: SessionState, as_of_ms: int) -> dict[str, Any]:
        if not state.recent:
            return {"sessions": state.closed, "bounce_sessions": state.closed_bounces,
                    "session_length_s": 0.0, "session_depth": 0}
        sessions = split(state.recent, self.gap)
        start, end, depth = sessions[-1]
        return {
            "sessions": state.closed + len(sessions),
            "bounce_sessions": state.closed_bounces + sum(1 for s in sessions if s[2] == 1),
            "session_length_s": (end - start) / 1000,
            "session_depth": depth,
        }
