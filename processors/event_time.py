"""The event-time check every stateful processor makes of an input event: late, duplicate, or applied.

An event whose id was seen is a duplicate, whatever its time (a stage that restarts re-sends what it
had not committed, which can by then be older than the lateness bound: it is counted as the duplicate
it is, not as a late event, while its id is remembered); an event older than the newest event of the
same stream for this customer minus the allowed lateness is late. Otherwise its id is remembered
(with its time and stream) and the stream's newest time moves on. Ids are forgotten once older
than their own stream's lateness bound (they could only come back late), when the set has
doubled since the last pruning, so remembering stays amortised O(1) per event.

A stream is a topic, or (identity resolution) a topic and an origin: the original subject of events
the identity stage re-keyed onto this customer (:func:`stream_of`). Each subject's events are in
event-time order on its own input partition, but reach the profile they are re-keyed to interleaved
with the profile's own, often days behind: each origin keeps its own newest time.
"""

from __future__ import annotations

from enum import Enum
from sys import intern
from typing import Protocol

#: The fewest ids kept before the first pruning.
MIN_PRUNE_AT = 256
#: Between a topic and an origin in a stream's name: a control character, which no identifier holds
#: (``schemas.base.IDENTIFIER_PATTERN``) and no topic name either.
ORIGIN_SEPARATOR = "\x1f"


class Outcome(Enum):
    APPLIED = "applied"
    LATE = "late"
    DUPLICATE = "duplicate"


class EventTimeState(Protocol):
    """The fields of a customer's state the check reads and keeps (plain containers, so states pickle)."""

    newest: dict[str, int]  # stream -> newest event time (ms)
    recent_ids: dict[str, tuple[int, str]]  # event id -> (time, stream)
    prune_ids_at: int  # size of recent_ids that triggers the next pruning


def stream_of(topic: str, origin: str | None = None) -> str:
    """The stream an event of ``topic`` belongs to: the topic itself, or the topic and the event's origin."""
    return topic if origin is None else intern(f"{topic}{ORIGIN_SEPARATOR}{origin}")


def is_origin_stream(stream: str) -> bool:
    """Whether ``stream`` holds events re-keyed from another subject (not the customer's own of a topic)."""
    return ORIGIN_SEPARATOR in stream


def admit(state: EventTimeState, topic: str, t_ms: int, event_id: str, lateness_ms: int) -> Outcome:
    """Whether an event of stream ``topic`` (:func:`stream_of`) at ``t_ms`` is late, a duplicate or applied;
    an applied one is recorded."""
    if event_id in state.recent_ids:  # first: a redelivered event still remembered is a duplicate, however old
        return Outcome.DUPLICATE
    newest = state.newest.get(topic)
    if newest is not None and t_ms < newest - lateness_ms:
        return Outcome.LATE
    state.recent_ids[event_id] = (t_ms, topic)
    if newest is None or t_ms > newest:
        state.newest[topic] = t_ms
        if len(state.recent_ids) > state.prune_ids_at:
            newest_of = state.newest
            state.recent_ids = {i: (t, seen_on) for i, (t, seen_on) in state.recent_ids.items()
                                if t >= newest_of[seen_on] - lateness_ms}
            state.prune_ids_at = max(MIN_PRUNE_AT, 2 * len(state.recent_ids))
    return Outcome.APPLIED
