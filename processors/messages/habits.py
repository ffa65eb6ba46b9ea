"""Channel habits: where the customer spends their time decides which channel is tried first.

Clickstream events count per platform: ``app`` against everything else (web, mobile web,
marketplace). Most events in the app makes an "app" customer (push first), otherwise
"web" (e-mail first); the orders come from ``[channels]`` in the settings.

The habit is taken *as of the trigger's time*: the newest events are kept with their event
times (bounded), so an event dated after the trigger does not count even when the host read
it first; older events are folded into plain counts.
"""

from __future__ import annotations

import bisect
from typing import Literal

Habit = Literal["app", "web"]
#: Newest clickstream events kept with their times; older ones only count (they are before any trigger still to come).
MAX_TIMED = 256


def record(habits: dict[str, int], platform: str, timed: list[tuple[int, bool]] | None = None,
           t_ms: int | None = None) -> None:
    """Count one event; with ``timed`` and ``t_ms``, keep it with its time (the oldest beyond the bound fold in)."""
    is_app = platform == "app"
    if timed is None or t_ms is None:
        key = "app" if is_app else "web"
        habits[key] = habits.get(key, 0) + 1
        return
    bisect.insort(timed, (t_ms, is_app))
    while len(timed) > MAX_TIMED:
        _, old_app = timed.pop(0)
        key = "app" if old_app else "web"
        habits[key] = habits.get(key, 0) + 1


def habit(habits: dict[str, int], timed: list[tuple[int, bool]] | None = None, at_ms: int | None = None) -> Habit:
    """"app" when most clickstream up to ``at_ms`` came from the app (ties and no data: "web")."""
    app, web = habits.get("app", 0), habits.get("web", 0)
    for t_ms, is_app in timed or ():
        if at_ms is not None and t_ms > at_ms:
            break
        if is_app:
            app += 1
        else:
            web += 1
    return "app" if app > web else "web"
