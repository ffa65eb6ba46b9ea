"""The event-time check every stateful processor makes of an input event: late, duplicate, or applied.

An event older than the newest event of the same topic for this customer minus the allowed
lateness is late; an event whose id was seen is a duplicate. Otherwise its id is remembered
(with its time and topic) and the topic's newest time moves on. Ids are forgotten once older
than their own topic's lateness bound (they could only come back late), when the set has
doubled since the last pruning, so remembering stays amortised O(1) per event.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

#: The fewest ids kept before the first pruning.
MIN_PRUNE_AT = 256


class Outcome(Enum):
    APPLIED = "applied"
    LATE = "late"
    DUPLICATE = "duplicate"


class EventTimeState(Protocol):
    """The fields of a customer's state the check reads and keeps (plain containers, so states pickle)."""

    newest: dict[str, int]  # topic -> newest event time (ms)
    recent_ids: dict[str, tuple[int, str]]  # event id -> (time, topic)
    prune_ids_at: int  # size of recent_ids that triggers the next pruning


def admit(state: EventTimeState, topic: str, t_ms: int, event_id: str, lateness_ms: int) -> Outcome:
    """Whether an event of ``topic`` at ``t_ms`` is late, a duplicate or applied; an applied one is recorded."""
    newest = state.newest.get(topic)
    if newest is not None and t_ms < newest - lateness_ms:
        return Outcome.LATE
    if event_id in state.recent_ids:
        return Outcome.DUPLICATE
    state.recent_ids[event_id] = (t_ms, topic)
    if newest is None or t_ms > newest:
        state.newest[topic] = t_ms
        if len(state.recent_ids) > state.prune_ids_at:
            newest_of = state.newest
            state.recent_ids = {i: (t, seen_on) for i, (t, seen_on) in state.recent_ids.items()
                                if t >= newest_of[seen_on] - lateness_ms}
            state.prune_ids_at = max(MIN_PRUNE_AT, 2 * len(state.recent_ids))
    return Outcome.APPLIED
