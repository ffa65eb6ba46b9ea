"""Channel habits: where the customer spends their time decides which channel is tried first.

Clickstream events count per platform: ``app`` against everything else (web, mobile web,
marketplace). Most events in the app makes an "app" customer (push first), otherwise
"web" (e-mail first); the orders come from ``[channels]`` in the settings.
"""

from __future__ import annotations

from typing import Literal

Habit = Literal["app", "web"]


def record(habits: dict[str, int], platform: str) -> None:
    key = "app" if platform == "app" else "web"
    habits[key] = habits.get(key, 0) + 1


def habit(habits: dict[str, int]) -> Habit:
    """"app" when most clickstream came from the app (ties and no data: "web")."""
    return "app" if habits.get("app", 0) > habits.get("web", 0) else "web"
