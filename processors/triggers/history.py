"""What an agent needs to see of a customer at once: latest orders, open issues, sentiment, value.

Kept per customer from the events the trigger processor reads (orders and chat), bounded,
and completed with the latest ``customer-features`` profile (stage, segments, 7-day
sentiment, lifetime value when the profile knows more than the events seen here).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from processors.features.base import Observed
from processors.triggers.records import iso

#: order event type -> the status it moves the order to.
STATUS_OF = {"order_placed": "placed", "order_paid": "paid", "order_shipped": "shipped",
             "order_delivered": "delivered", "order_cancelled": "cancelled", "order_refunded": "refunded"}
RANK = {status: rank for rank, status in enumerate(STATUS_OF.values())}
MAX_ORDERS = 20
MAX_CONVERSATIONS = 64
MAX_SENTIMENTS = 50


@dataclass(slots=True)
class OrderSeen:
    placed_ms: int | None = None
    status: str = "placed"
    status_ms: int = 0
    amount_cents: int | None = None
    currency: str | None = None
    products: tuple[str, ...] = ()


@dataclass(slots=True)
class HistoryState:
    orders: dict[str, OrderSeen] = field(default_factory=dict)
    orders_placed: int = 0
    revenue_cents: int = 0
    priced_orders: int = 0
    first_order_ms: int | None = None
    last_order_ms: int | None = None
    refunds: int = 0
    cancellations: int = 0
    conversations: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # id -> (t, event id, role)
    sentiments: list[tuple[int, str, float, str]] = field(default_factory=list)  # sorted (t, id, score, conv)


def observe(history: HistoryState, seen: Observed, score: float | None) -> None:
    """Fold an order or chat event in; ``score`` is the sentiment of a customer's chat message."""
    kind, t, e = seen.type, seen.t_ms, seen.event
    status = STATUS_OF.get(kind)
    if status is not None:
        order = history.orders.get(e.order_id)
        if order is None:
            order = history.orders[e.order_id] = OrderSeen(status=status, status_ms=t)
        if kind == "order_placed":
            history.orders_placed += 1
            order.placed_ms = t
            order.currency = e.currency
            order.products = tuple(item.product_id for item in e.items)
            if e.amount is not None:
                order.amount_cents = round(e.amount * 100)
                history.revenue_cents += order.amount_cents
                history.priced_orders += 1
            history.first_order_ms = t if history.first_order_ms is None else min(history.first_order_ms, t)
            history.last_order_ms = t if history.last_order_ms is None else max(history.last_order_ms, t)
        elif kind == "order_refunded":
            history.refunds += 1
        elif kind == "order_cancelled":
            history.cancellations += 1
        if (t, RANK[status]) >= (order.status_ms, RANK[order.status]):
            order.status, order.status_ms = status, t
        if len(history.orders) > MAX_ORDERS:
            keep = sorted(history.orders.items(), key=lambda kv: kv[1].placed_ms or kv[1].status_ms)[-MAX_ORDERS:]
            history.orders = dict(keep)
    elif kind == "chat_message":
        mark = (t, seen.event_id, e.sender_role)
        previous = history.conversations.get(e.conversation_id)
        if previous is None or mark[:2] > previous[:2]:
            history.conversations[e.conversation_id] = mark
        if len(history.conversations) > MAX_CONVERSATIONS:
            newest = sorted(history.conversations.items(), key=lambda kv: kv[1][:2])[-MAX_CONVERSATIONS:]
            history.conversations = dict(newest)
        if score is not None:
            bisect.insort(history.sentiments, (t, seen.event_id, score, e.conversation_id))
            if len(history.sentiments) > MAX_SENTIMENTS:
                del history.sentiments[0]


def negative_streak(history: HistoryState, upto: tuple[int, str], negative_below: float) -> int:
    """Consecutive negative customer messages ending at the message ``upto`` (time, id), in event-time order."""
    streak = 0
    for t, event_id, score, _ in history.sentiments:
        if (t, event_id) > upto:
            break
        streak = streak + 1 if score < negative_below else 0
    return streak


def open_conversations(history: HistoryState) -> list[str]:
    """Conversations whose newest message is the customer's (nobody has answered yet), newest first."""
    waiting = [(mark[:2], conv) for conv, mark in history.conversations.items() if mark[2] == "customer"]
    return [conv for _, conv in sorted(waiting, reverse=True)]


def summary(history: HistoryState, profile: dict[str, Any], orders: int, trend: int,
            negative_below: float) -> dict[str, Any]:
    """The ``schemas.triggers.CustomerHistory`` of a customer, as a dict."""
    latest = sorted(history.orders.items(), key=lambda kv: (kv[1].placed_ms or kv[1].status_ms, kv[0]),
                    reverse=True)[:orders]
    last_orders = [{
        "order_id": order_id, "placed_at": iso(o.placed_ms), "status": o.status, "status_at": iso(o.status_ms),
        "amount": o.amount_cents / 100 if o.amount_cents is not None else None, "currency": o.currency,
        "items": len(o.products),
    } for order_id, o in latest]
    conversations = open_conversations(history)
    scores = [round(s, 4) for _, _, s, _ in history.sentiments[-trend:]] if trend else []
    streak = negative_streak(history, (2**62, ""), negative_below) if history.sentiments else 0
    orders_total = max(history.orders_placed, int(profile.get("orders_total") or 0))
    own_revenue = history.revenue_cents / 100 if history.priced_orders else None
    revenue = profile.get("revenue_total") if orders_total > history.orders_placed else own_revenue
    aov = profile.get("average_order_value") if orders_total > history.orders_placed else (
        history.revenue_cents / history.priced_orders / 100 if history.priced_orders else None)
    return {
        "last_orders": last_orders,
        "open_issues": len(conversations),
        "open_conversations": conversations[:20],
        "sentiment_trend": scores,
        "sentiment_7d": profile.get("sentiment_7d"),
        "negative_streak": streak,
        "orders_total": orders_total,
        "revenue_total": revenue,
        "average_order_value": aov,
        "refunds": max(history.refunds, int(profile.get("orders_refunded") or 0)),
        "cancellations": max(history.cancellations, int(profile.get("orders_cancelled") or 0)),
        "stage": profile.get("stage"),
        "segments": list(profile.get("segments") or []),
    }
