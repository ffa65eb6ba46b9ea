"""Pending absence timers of one customer: arm, supersede, cancel by a goal, fire when matured.

A timer waits for nothing to happen until its deadline (event time). It belongs to a
slot (``"cart"``, ``"review:o-17"``): a newer event of the same slot supersedes it only
while it has not matured, and a goal event cancels it only if the goal happened inside
its period (``anchor <= goal <= deadline``). A timer whose deadline has passed stays
pending until the host's clock fires it, so the outcome is the same whether the host
fired it before or after it saw the customer's next event, and whatever order events
within the allowed lateness arrive in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Timer:
    """A deadline armed by an anchor event; ``context`` and ``products`` go into the trigger."""

    trigger: str
    slot: str
    anchor_ms: int
    anchor_id: str
    deadline_ms: int
    products: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def order(self) -> tuple[int, str]:
        """Anchors compare by (event time, event id): ties break the same way in every replay."""
        return self.anchor_ms, self.anchor_id


def arm(timers: list[Timer], timer: Timer) -> bool:
    """Add ``timer`` unless a later anchor of its slot already covers it; drop the ones it supersedes.

    Returns whether the timer was added.
    """
    for other in timers:
        if other.slot == timer.slot and other.order > timer.order and other.anchor_ms <= timer.deadline_ms:
            return False
    timers[:] = [t for t in timers
                 if not (t.slot == timer.slot and t.order < timer.order and t.deadline_ms >= timer.anchor_ms)]
    timers.append(timer)
    return True


def cancel(timers: list[Timer], slot: Callable[[str], bool], at_ms: int) -> int:
    """Cancel the timers of matching slots whose period contains ``at_ms`` (a goal event); how many."""
    before = len(timers)
    timers[:] = [t for t in timers if not (slot(t.slot) and t.anchor_ms <= at_ms <= t.deadline_ms)]
    return before - len(timers)


def matured(timers: list[Timer], now_ms: int) -> list[Timer]:
    """Remove and return the timers whose deadline is before ``now_ms``, in (deadline, slot, anchor) order."""
    ready = [t for t in timers if t.deadline_ms < now_ms]
    if not ready:
        return []
    timers[:] = [t for t in timers if t.deadline_ms >= now_ms]
    return sorted(ready, key=lambda t: (t.deadline_ms, t.slot, t.order))


def next_deadline(timers: list[Timer]) -> int | None:
    """The earliest deadline pending, or None: a host fires the customer when its clock passes it."""
    return min((t.deadline_ms for t in timers), default=None)


def is_slot(name: str) -> Callable[[str], bool]:
    """A slot matcher for ``cancel``: the slot itself or its per-key variants (``name:...``)."""
    prefix = name + ":"
    return lambda slot: slot == name or slot.startswith(prefix)
