"""Consent per channel and purpose, from ``consent`` events, as of a moment in event time.

Each (purpose, channel) keeps its changes (bounded, newest last). A guard asks for the
verdict *at the trigger's time*: the newest change at or before it wins, so a change
dated after the trigger, even one that arrived first, does not decide it (the decision
is the same whatever order the host read the topics in).

Marketing messages need marketing consent on the channel: granted by an event, or
assumed on the channels listed in ``[consent] assumed_granted`` while no event says
otherwise. Service messages are exempt from marketing consent; only an explicit
withdrawal of *service* contact on a channel keeps them off it.
"""

from __future__ import annotations

import bisect
from typing import Literal

Change = tuple[int, str, str]  # (event time ms, event id, status)
#: (purpose, channel) -> its changes, oldest first (a state from before the history: one change, a tuple)
ConsentBook = dict[tuple[str, str], list[Change] | Change]
Verdict = Literal["passed", "blocked", "exempt"]
#: Changes kept per (purpose, channel): older ones are only needed for triggers older than all of them.
MAX_CHANGES = 16


def _changes(book: ConsentBook, key: tuple[str, str]) -> list[Change]:
    entry = book.get(key)
    if entry is None:
        return []
    return [entry] if isinstance(entry, tuple) else entry


def record(book: ConsentBook, purpose: str, channel: str, t_ms: int, event_id: str, status: str) -> None:
    """Fold in one consent change, in event-time order whatever the arrival order (a repeat is ignored)."""
    key = (purpose, channel)
    changes = list(_changes(book, key))
    change = (t_ms, event_id, status)
    if change in changes:
        return
    bisect.insort(changes, change)
    book[key] = changes[-MAX_CHANGES:]


def status_at(book: ConsentBook, purpose: str, channel: str, at_ms: int | None) -> str | None:
    """The status of the newest change at or before ``at_ms`` (None: the newest of all), None if there is none."""
    changes = _changes(book, (purpose, channel))
    if at_ms is not None:
        changes = [c for c in changes if c[0] <= at_ms]
    return changes[-1][2] if changes else None


def verdict(book: ConsentBook, channel: str, service: bool, assumed_granted: tuple[str, ...],
            at_ms: int | None = None) -> tuple[Verdict, str]:
    """Whether a message may use ``channel`` at ``at_ms``, and why (a reason code, never personal data)."""
    if service:
        if status_at(book, "service", channel, at_ms) == "withdrawn":
            return "blocked", "service contact withdrawn on this channel"
        return "exempt", "service message: marketing consent does not apply"
    known = status_at(book, "marketing", channel, at_ms)
    if known is None:
        if channel in assumed_granted:
            return "passed", "no consent event; channel assumed granted"
        return "blocked", "no marketing consent given on this channel"
    if known == "granted":
        return "passed", "marketing consent granted"
    return "blocked", "marketing consent withdrawn"
