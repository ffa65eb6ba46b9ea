"""Cart abandoned: a cart with items and no further cart change, checkout or order for ``after_minutes``.

Every cart change that leaves items in the cart (re)arms the timer from its own time; a
change that empties the cart, a checkout or an order inside the period cancels it. The
cart is the adds and removes after the latest order (an order at T empties everything up
to T), applied in (time, event id) order with quantities floored at zero, as the
``cart_*`` features count it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from processors.features.base import Observed
from processors.triggers.config import MINUTE_MS, CartAbandoned
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm, cancel, is_slot

SLOT = "cart"
MAX_LINES = 256


@dataclass(slots=True)
class CartRuleState:
    lines: list[tuple[int, str, str, int]] = field(default_factory=list)  # t, event id, product, quantity delta
    last_order_ms: int | None = None


def cart_at(lines: list[tuple[int, str, str, int]], upto: tuple[int, str]) -> dict[str, int]:
    """product -> quantity after the lines up to (time, event id) ``upto``."""
    cart: dict[str, int] = {}
    for t, event_id, product, delta in sorted(lines):
        if (t, event_id) > upto:
            break
        cart[product] = max(cart.get(product, 0) + delta, 0)
    return {p: q for p, q in cart.items() if q > 0}


class CartAbandonedRule(RuleBase):
    name = "cart_abandoned"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: CartAbandoned) -> None:
        self.enabled = config.enabled
        self.after_ms = config.after_minutes * MINUTE_MS
        self.minutes = config.after_minutes

    def init(self) -> CartRuleState:
        return CartRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: CartRuleState = state.rules[self.name]
        kind, t = seen.type, seen.t_ms
        if kind in ("add_to_cart", "remove_from_cart"):
            if own.last_order_ms is not None and t <= own.last_order_ms:
                return []  # before the latest order: that order emptied it
            delta = seen.event.quantity if kind == "add_to_cart" else -seen.event.quantity
            own.lines.append((t, seen.event_id, seen.event.product_id, delta))
            if len(own.lines) > MAX_LINES:
                own.lines = sorted(own.lines)[-MAX_LINES:]
            cart = cart_at(own.lines, (t, seen.event_id))
            if not cart:
                cancel(state.timers, is_slot(SLOT), t)
                return []
            items = sum(cart.values())
            arm(state.timers, Timer(
                self.name, SLOT, t, seen.event_id, t + self.after_ms, tuple(sorted(cart)),
                {"reason": f"cart with {items} item(s) untouched for {self.minutes} min, no checkout or order",
                 "cart_items": items, "cart_products": len(cart)}))
        elif kind == "checkout_started":
            cancel(state.timers, is_slot(SLOT), t)
        elif kind == "order_placed":
            if own.last_order_ms is None or t > own.last_order_ms:
                own.last_order_ms = t
                own.lines = [line for line in own.lines if line[0] > t]
            cancel(state.timers, is_slot(SLOT), t)
        return []
