"""Cart: what is in the cart now, its value, last change, and a checkout started but not finished.

The cart is the cart events (adds and removes) after the customer's latest order, in
event time, applied in (time, event id) order with quantities floored at zero; lines
older than ``cart_expiry`` have expired. An order placed at time T empties the cart
of everything before T, whatever order the events arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.features.base import Observed
from processors.features.config import FeatureConfig


@dataclass(slots=True)
class CartState:
    lines: list[tuple[int, str, str, int, int | None]] = field(default_factory=list)  # t, id, product, delta, cents
    last_order_ms: int | None = None
    last_checkout_ms: int | None = None


def cents(amount: float | None) -> int | None:
    """Money as integer cents, so sums are exact in any order."""
    return None if amount is None else round(amount * 100)


class Cart:
    name: ClassVar[str] = "cart"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: FeatureConfig) -> None:
        self.expiry = config.cart_expiry_ms

    def init(self) -> CartState:
        return CartState()

    def update(self, state: CartState, seen: Observed) -> CartState:
        kind, t = seen.type, seen.t_ms
        if kind in ("add_to_cart", "remove_from_cart"):
            if state.last_order_ms is None or t > state.last_order_ms:
                e = seen.event
                delta = e.quantity if kind == "add_to_cart" else -e.quantity
                state.lines.append((t, seen.event_id, e.product_id, delta, cents(e.price)))
        elif kind == "checkout_started":
            if state.last_checkout_ms is None or t > state.last_checkout_ms:
                state.last_checkout_ms = t
        elif kind == "order_placed" and (state.last_order_ms is None or t > state.last_order_ms):
            state.last_order_ms = t
            state.lines = [line for line in state.lines if line[0] > t]
        if len(state.lines) > 256:
            newest = max(line[0] for line in state.lines)
            state.lines = [line for line in state.lines if line[0] > newest - self.expiry]
        return state

    def expiries(self, state: CartState) -> list[int]:
        """When each line of the cart expires: the times at which time alone can change the cart."""
        expiry = self.expiry
        return [line[0] + expiry for line in state.lines]

    def items(self, state: CartState, as_of_ms: int) -> dict[str, tuple[int, int | None, int]]:
        """product -> (quantity, unit price in cents or None, last change) of the current cart."""
        cart: dict[str, tuple[int, int | None, int]] = {}
        for t, _, product, delta, price in sorted(state.lines):
            if t <= as_of_ms - self.expiry:
                continue
            quantity, known, _ = cart.get(product, (0, None, t))
            cart[product] = (max(quantity + delta, 0), price if price is not None else known, t)
        return {p: line for p, line in cart.items() if line[0] > 0}

    def values(self, state: CartState, as_of_ms: int) -> dict[str, Any]:
        items = self.items(state, as_of_ms)
        changes = [t for t, *_ in state.lines if t > as_of_ms - self.expiry]
        checkout_open = state.last_checkout_ms is not None and (
            state.last_order_ms is None or state.last_checkout_ms > state.last_order_ms)
        return {
            "cart_items": sum(q for q, _, _ in items.values()),
            "cart_products": len(items),
            "cart_value": sum(q * (p or 0) for q, p, _ in items.values()) / 100,
            "cart_unpriced_items": sum(q for q, p, _ in items.values() if p is None),
            "cart_last_change_ms": max(changes) if changes else None,
            "cart_since_ms": min(t for t, *_ in state.lines if t > as_of_ms - self.expiry) if items else None,
            "checkout_open": checkout_open,
            "checkout_started_ms": state.last_checkout_ms if checkout_open else None,
        }
