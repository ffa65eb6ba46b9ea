"""Win-back: no event at all for ``after_days`` from a customer who has ordered.

Every event of a buyer (any input topic) re-arms the timer from its own time, so it
fires once per inactivity period, at last activity + ``after_days``.
"""

from __future__ import annotations

from typing import ClassVar

from processors.features.base import Observed
from processors.triggers.config import DAY_MS, WinBack
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm

SLOT = "win_back"


class WinBackRule(RuleBase):
    name = "win_back"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders", "chat", "consent"})

    def __init__(self, config: WinBack) -> None:
        self.enabled = config.enabled
        self.after_ms = config.after_days * DAY_MS
        self.days = config.after_days

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        t = seen.t_ms
        if not state.has_ordered(t):
            return []
        last_order = state.history.last_order_ms
        context = {"reason": f"a buyer with no activity for {self.days} day(s)", "inactive_days": self.days,
                   "orders_total": max(state.history.orders_placed, state.profile_orders(t))}
        if last_order is not None:
            context["days_since_last_order"] = round((t + self.after_ms - last_order) / DAY_MS, 2)
        arm(state.timers, Timer(self.name, SLOT, t, seen.event_id, t + self.after_ms, (), context))
        return []
