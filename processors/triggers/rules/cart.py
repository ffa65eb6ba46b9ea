"""Cart abandoned: a cart with items and no further cart change, checkout or order for ``after_minutes``.

The cart is the adds and removes after the latest order (an order at T empties everything
up to T), applied in (time, event id) order with quantities floored at zero, as the
``cart_*`` features count it. Every cart change that leaves items in the cart starts a
period; the period ends, and the trigger fires, at change + ``after_minutes`` unless a
later cart change, a checkout or an order falls inside it (ends included).

The pending cart timers are recomputed from the kept cart history on every cart, checkout
or order event, so events arriving out of order within the allowed lateness give the
same triggers as in order. Periods up to the last one fired are never re-armed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.features.base import MINUTE_MS, Observed
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec, fire_timer
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer

SLOT = "cart"
MAX_LINES = 256
MAX_GOALS = 64


@dataclass(frozen=True)
class CartAbandoned:
    """The ``[cart_abandoned]`` section of ``rules.toml``."""

    enabled: bool = True
    after_minutes: float = 30.0  # a float, so a test or a demo can use seconds (0.05 = 3 s)


@dataclass(slots=True)
class CartRuleState:
    lines: list[tuple[int, str, str, int]] = field(default_factory=list)  # sorted (t, event id, product, delta)
    goals: list[tuple[int, str, str]] = field(default_factory=list)  # sorted (t, event id, type): checkouts, orders
    fired: tuple[int, int, str] | None = None  # (deadline, anchor time, anchor id) of the last period fired


class CartAbandonedRule(RuleBase):
    name = "cart_abandoned"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: CartAbandoned) -> None:
        self.enabled = config.enabled
        self.after_ms = round(config.after_minutes * MINUTE_MS)
        self.minutes = f"{config.after_minutes:g}"

    def init(self) -> CartRuleState:
        return CartRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: CartRuleState = state.rules[self.name]
        kind = seen.type
        if kind in ("add_to_cart", "remove_from_cart"):
            delta = seen.event.quantity if kind == "add_to_cart" else -seen.event.quantity
            bisect.insort(own.lines, (seen.t_ms, seen.event_id, seen.event.product_id, delta))
            del own.lines[:-MAX_LINES]
        elif kind in ("checkout_started", "order_placed"):
            bisect.insort(own.goals, (seen.t_ms, seen.event_id, kind))
            del own.goals[:-MAX_GOALS]
        else:
            return []
        self._rearm(state, own)
        return []

    def on_timer(self, state: TriggerState, timer: Timer) -> Fired | None:
        own: CartRuleState = state.rules[self.name]
        mark = (timer.deadline_ms, timer.anchor_ms, timer.anchor_id)
        if own.fired is None or mark > own.fired:
            own.fired = mark
        return fire_timer(timer)

    def _rearm(self, state: TriggerState, own: CartRuleState) -> None:
        """Replace the pending cart timers by those the cart history implies."""
        timers = [t for t in state.timers if t.slot != SLOT]
        orders = [g[0] for g in own.goals if g[2] == "order_placed"]
        goal_times = [g[0] for g in own.goals]
        cart: dict[str, int] = {}
        next_order = 0
        for index, (t, event_id, product, delta) in enumerate(own.lines):
            while next_order < len(orders) and orders[next_order] < t:
                cart.clear()  # an order empties the cart of everything up to it
                next_order += 1
            if next_order < len(orders) and orders[next_order] == t:
                continue  # an order at the same time empties this line too
            cart[product] = max(cart.get(product, 0) + delta, 0)
            deadline = t + self.after_ms
            if own.fired is not None and (deadline, t, event_id) <= own.fired:
                continue
            if index + 1 < len(own.lines) and own.lines[index + 1][0] <= deadline:
                continue  # a later cart change inside the period starts the next one
            first_goal = bisect.bisect_left(goal_times, t)
            if first_goal < len(goal_times) and goal_times[first_goal] <= deadline:
                continue  # a checkout or an order inside the period
            items = {p: q for p, q in cart.items() if q > 0}
            if items:
                timers.append(Timer(self.name, SLOT, t, event_id, deadline, tuple(sorted(items)),
                                    self._context(sum(items.values()), len(items))))
        state.timers[:] = timers

    def _context(self, items: int, products: int) -> dict[str, Any]:
        return {"reason": f"cart with {items} item(s) untouched for {self.minutes} min, no checkout or order",
                "cart_items": items, "cart_products": products}


SPECS = (RuleSpec("cart_abandoned", CartAbandoned(), lambda section, config: CartAbandonedRule(section)),)
