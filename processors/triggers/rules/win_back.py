"""Win-back: no event at all for ``after_days`` from a customer who has ordered.

Every event of a buyer (any input topic) re-arms the timer from the customer's latest
activity, so it fires once per inactivity period, at last activity + ``after_days``. The
anchor is the newest event seen, not the one that arrived: an order arriving after newer
clickstream (the topics are read side by side) arms from that newer activity, as it would
have in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from processors.features.base import DAY_MS, Observed
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm

SLOT = "win_back"


@dataclass(frozen=True)
class WinBack:
    """The ``[win_back]`` section of ``rules.toml``."""

    enabled: bool = True
    after_days: int = 60


@dataclass(slots=True)
class WinBackRuleState:
    newest: tuple[int, str] | None = None  # (time, id) of the customer's newest event
    armed: tuple[int, str] | None = None  # the anchor of the timer armed last


class WinBackRule(RuleBase):
    name = "win_back"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders", "chat", "consent"})

    def __init__(self, config: WinBack) -> None:
        self.enabled = config.enabled
        self.after_ms = config.after_days * DAY_MS
        self.days = config.after_days

    def init(self) -> WinBackRuleState:
        return WinBackRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: WinBackRuleState = state.rules[self.name]
        mark = (seen.t_ms, seen.event_id)
        if own.newest is None or mark > own.newest:
            own.newest = mark
        t, anchor = own.newest
        if own.armed == own.newest or not state.has_ordered(t):
            return []
        own.armed = own.newest
        last_order = state.history.last_order_ms
        context = {"reason": f"a buyer with no activity for {self.days} day(s)", "inactive_days": self.days,
                   "orders_total": max(state.history.orders_placed, state.profile_orders(t))}
        if last_order is not None:
            context["days_since_last_order"] = round((t + self.after_ms - last_order) / DAY_MS, 2)
        arm(state.timers, Timer(self.name, SLOT, t, anchor, t + self.after_ms, (), context))
        return []


SPECS = (RuleSpec("win_back", WinBack(), lambda section, config: WinBackRule(section)),)
