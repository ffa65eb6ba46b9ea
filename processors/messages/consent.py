"""Consent per channel and purpose, from ``consent`` events: the newest change (by event time) wins.

Marketing messages need marketing consent on the channel: granted by an event, or
assumed on the channels listed in ``[consent] assumed_granted`` while no event says
otherwise. Service messages are exempt from marketing consent; only an explicit
withdrawal of *service* contact on a channel keeps them off it.
"""

from __future__ import annotations

from typing import Literal

#: (purpose, channel) -> (event time ms, event id, status)
ConsentBook = dict[tuple[str, str], tuple[int, str, str]]
Verdict = Literal["passed", "blocked", "exempt"]


def record(book: ConsentBook, purpose: str, channel: str, t_ms: int, event_id: str, status: str) -> None:
    """Fold in one consent change; an older change than the one known is ignored (order-independent)."""
    key = (purpose, channel)
    current = book.get(key)
    if current is None or (t_ms, event_id) > current[:2]:
        book[key] = (t_ms, event_id, status)


def verdict(book: ConsentBook, channel: str, service: bool, assumed_granted: tuple[str, ...]) -> tuple[Verdict, str]:
    """Whether a message may use ``channel``, and why (a reason code, never personal data)."""
    if service:
        withdrawn = book.get(("service", channel))
        if withdrawn is not None and withdrawn[2] == "withdrawn":
            return "blocked", "service contact withdrawn on this channel"
        return "exempt", "service message: marketing consent does not apply"
    known = book.get(("marketing", channel))
    if known is None:
        if channel in assumed_granted:
            return "passed", "no consent event; channel assumed granted"
        return "blocked", "no marketing consent given on this channel"
    if known[2] == "granted":
        return "passed", "marketing consent granted"
    return "blocked", "marketing consent withdrawn"
