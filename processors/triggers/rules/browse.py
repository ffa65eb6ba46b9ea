"""Browse abandoned: a session with at least ``min_product_views`` product views and no cart.

A session is the customer's clickstream with gaps of at most ``session_gap_minutes``; it
ends when that much time passes without a clickstream event, and the trigger fires then
(at last event + gap). An add to cart, a checkout or an order in the session cancels it.
Sessions follow the clickstream in arrival order (a late event joins the session it arrives
in). Orders come on their own topic, which a host reads side by side with the clickstream,
so an order may arrive before the views that precede it: the rule keeps the latest goal
times and a session is converted when a goal falls in ``[session start, last + gap]``,
whichever arrived first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from processors.features.base import Observed
from processors.triggers.config import MINUTE_MS, BrowseAbandoned
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, fire_timer
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm

SLOT = "browse"
GOALS = frozenset({"add_to_cart", "checkout_started", "order_placed"})
MAX_GOALS = 1000  # goals ahead of the clickstream (pruned at each new session)
START = "session_start_ms"  # kept in the timer, not in the trigger


@dataclass(slots=True)
class BrowseRuleState:
    last_ms: int | None = None
    views: int = 0
    products: list[str] = field(default_factory=list)  # distinct, newest last (bounded)
    converted: bool = False
    start_ms: int | None = None
    goals: list[int] = field(default_factory=list)  # goal times not before the session (arrived early)


class BrowseAbandonedRule(RuleBase):
    name = "browse_abandoned"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: BrowseAbandoned) -> None:
        self.enabled = config.enabled
        self.gap_ms = config.session_gap_minutes * MINUTE_MS
        self.min_views = config.min_product_views
        self.max_products = config.max_products

    def init(self) -> BrowseRuleState:
        return BrowseRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: BrowseRuleState = state.rules[self.name]
        kind, t = seen.type, seen.t_ms
        if seen.topic == "clickstream":
            if own.last_ms is None or t > own.last_ms + self.gap_ms:
                own.views, own.products, own.converted, own.start_ms = 0, [], False, t  # a new session
                own.goals = [g for g in own.goals if g >= t]  # older goals cannot touch this or later sessions
            own.last_ms = t if own.last_ms is None else max(own.last_ms, t)
            if kind == "product_view":
                own.views += 1
                product = seen.event.product_id
                if product in own.products:
                    own.products.remove(product)
                own.products.append(product)
                del own.products[:-self.max_products]
        if kind in GOALS:
            own.goals = sorted([*own.goals, t])[-MAX_GOALS:]
            if own.start_ms is not None and own.last_ms is not None and own.start_ms <= t <= own.last_ms + self.gap_ms:
                own.converted = True
            # A session's timer is cancelled by a goal anywhere in it, also between views that arrived first.
            state.timers[:] = [timer for timer in state.timers if not (
                timer.slot == SLOT and timer.context.get(START, timer.anchor_ms) <= t <= timer.deadline_ms)]
            return []
        if seen.topic == "clickstream" and not own.converted and own.views >= self.min_views:
            assert own.last_ms is not None and own.start_ms is not None
            if any(own.start_ms <= g <= own.last_ms + self.gap_ms for g in own.goals):
                own.converted = True  # a goal of this session arrived before these views: its timer goes too
                state.timers[:] = [timer for timer in state.timers
                                   if not (timer.slot == SLOT and timer.context.get(START) == own.start_ms)]
                return []
            arm(state.timers, Timer(
                self.name, SLOT, own.last_ms, seen.event_id, own.last_ms + self.gap_ms,
                tuple(reversed(own.products)),
                {"reason": f"{own.views} product view(s) in a session and nothing added to the cart",
                 "product_views": own.views, START: own.start_ms}))
        return []

    def on_timer(self, state: TriggerState, timer: Timer) -> Fired | None:
        fired = fire_timer(timer)
        return replace(fired, context={k: v for k, v in fired.context.items() if k != START})
