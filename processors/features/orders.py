"""Orders (RFM): recency, order count and revenue over 30/90/365 days and lifetime, average order
value, cancellations and refunds, average days between orders, first-order date.

Revenue is the sum of known ``order_placed`` amounts in integer cents (exact in any
order); orders with an unknown amount count as orders but add no revenue. Day buckets
hold (orders, cents) for the windows: a window of N days as of T holds the days in
(day(T) - N, day(T)].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.features.base import DAY_MS, Observed, day_of
from processors.features.cart import cents
from processors.features.config import FeatureConfig


@dataclass(slots=True)
class OrdersState:
    orders: int = 0
    revenue_cents: int = 0
    priced_orders: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    days: dict[int, list[int]] = field(default_factory=dict)  # day -> [orders, cents]
    cancelled: int = 0
    refunds: int = 0
    refunded_cents: int = 0
    delivered: int = 0
    last_delivered_ms: int | None = None


class Orders:
    name: ClassVar[str] = "orders"
    topics: ClassVar[frozenset[str]] = frozenset({"orders"})

    def __init__(self, config: FeatureConfig) -> None:
        self.windows = config.order_windows_days
        self.keep_days = max(self.windows)

    def init(self) -> OrdersState:
        return OrdersState()

    def update(self, state: OrdersState, seen: Observed) -> OrdersState:
        kind, t = seen.type, seen.t_ms
        if kind == "order_placed":
            amount = cents(seen.event.amount)
            state.orders += 1
            if amount is not None:
                state.revenue_cents += amount
                state.priced_orders += 1
            state.first_ms = t if state.first_ms is None else min(state.first_ms, t)
            state.last_ms = t if state.last_ms is None else max(state.last_ms, t)
            bucket = state.days.setdefault(day_of(t), [0, 0])
            bucket[0] += 1
            bucket[1] += amount or 0
            if len(state.days) > self.keep_days + 30:
                oldest = day_of(state.last_ms) - self.keep_days - 30
                state.days = {d: b for d, b in state.days.items() if d > oldest}
        elif kind == "order_cancelled":
            state.cancelled += 1
        elif kind == "order_refunded":
            state.refunds += 1
            state.refunded_cents += cents(seen.event.amount) or 0
        elif kind == "order_delivered":
            state.delivered += 1
            if state.last_delivered_ms is None or t > state.last_delivered_ms:
                state.last_delivered_ms = t
        return state

    def values(self, state: OrdersState, as_of_ms: int) -> dict[str, Any]:
        today = day_of(as_of_ms)
        out: dict[str, Any] = {
            "orders_total": state.orders,
            "revenue_total": state.revenue_cents / 100,
            "average_order_value": (state.revenue_cents / state.priced_orders / 100) if state.priced_orders else None,
            "first_order_ms": state.first_ms,
            "last_order_ms": state.last_ms,
            "recency_days": (as_of_ms - state.last_ms) / DAY_MS if state.last_ms is not None else None,
            "days_between_orders": ((state.last_ms - state.first_ms) / DAY_MS / (state.orders - 1))
            if state.orders > 1 and state.first_ms is not None and state.last_ms is not None else None,
            "orders_cancelled": state.cancelled,
            "orders_refunded": state.refunds,
            "refunded_total": state.refunded_cents / 100,
            "orders_delivered": state.delivered,
            "last_delivered_ms": state.last_delivered_ms,
        }
        for width in self.windows:
            n = c = 0
            for day, (orders, amount) in state.days.items():
                if today - width < day <= today:
                    n += orders
                    c += amount
            out[f"orders_{width}d"] = n
            out[f"revenue_{width}d"] = c / 100
        return out
