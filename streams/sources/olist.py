"""Olist replay: orders, items, payments and status changes -> orders; review texts -> chat.

The customer is ``customer_unique_id`` (the person; Olist's ``customer_id`` is per order).
Olist times are local Brazil time with no zone: they are read as America/Sao_Paulo.
Per order: ``order_placed`` at purchase (items with prices, amount = items + freight),
``order_paid`` at approval (payment type, amount paid), ``order_shipped`` at hand-over
to the carrier, ``order_delivered`` at delivery, and ``order_cancelled`` for status
"canceled" (Olist records no cancel time: the order's latest timestamp is used). A
missing timestamp means that step did not happen. Reviews with a title or message
become customer chat messages on the "review" channel with the score as ``rating``;
reviews without text are counted as skipped.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schemas.chat import ChatMessage
from schemas.orders import (
    OrderCancelled,
    OrderDelivered,
    OrderItem,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
)
from streams.sources.record import SourceRecord, derive_event_id, record_of
from streams.sources.stats import ReplayStats

SOURCE = "olist"
BRAZIL = ZoneInfo("America/Sao_Paulo")
PAYMENT_TYPES = {"credit_card": "credit_card", "boleto": "boleto", "voucher": "voucher", "debit_card": "debit_card"}


def local_time(text: str) -> datetime | None:
    """An Olist timestamp (Sao Paulo local time) in UTC, or None when empty."""
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=BRAZIL).astimezone(UTC)


def _read(directory: Path, name: str) -> list[dict[str, str]]:
    path = directory / name
    if not path.exists():
        raise FileNotFoundError(f"{path} (an Olist directory holds olist_*_dataset.csv files)")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def olist(directory: Path, stats: ReplayStats | None = None) -> list[SourceRecord]:
    """Every order lifecycle step and review text as records, sorted by event time (stable)."""
    stats = stats or ReplayStats()
    records = list(_events(directory, stats))
    records.sort(key=lambda r: r.event_time or datetime.max.replace(tzinfo=UTC))
    return records


def _events(directory: Path, stats: ReplayStats) -> Iterator[SourceRecord]:
    person = {row["customer_id"]: row["customer_unique_id"] for row in _read(directory, "olist_customers_dataset.csv")}
    english = {row["product_category_name"]: row["product_category_name_english"]
               for row in _read(directory, "product_category_name_translation.csv")}
    category = {row["product_id"]: english.get(row["product_category_name"], row["product_category_name"]) or None
                for row in _read(directory, "olist_products_dataset.csv")}
    items: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _read(directory, "olist_order_items_dataset.csv"):
        items[row["order_id"]].append(row)
    payments: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _read(directory, "olist_order_payments_dataset.csv"):
        payments[row["order_id"]].append(row)
    customer_of_order: dict[str, str] = {}

    for order in _read(directory, "olist_orders_dataset.csv"):
        stats.rows += 1
        order_id = order["order_id"]
        customer = person.get(order["customer_id"])
        if customer is None:
            stats.skipped["order_without_customer"] += 1
            continue
        customer_of_order[order_id] = customer
        lines = items.get(order_id, [])
        paid = payments.get(order_id, [])
        steps: list[tuple[str, datetime | None, dict[str, Any]]] = [
            ("order_placed", local_time(order["order_purchase_timestamp"]), {
                "items": [OrderItem(product_id=i["product_id"], category_id=category.get(i["product_id"]),
                                    unit_price=float(i["price"])) for i in lines],
                "amount": round(sum(float(i["price"]) + float(i["freight_value"]) for i in lines), 2),
                "freight": round(sum(float(i["freight_value"]) for i in lines), 2),
            }),
            ("order_paid", local_time(order["order_approved_at"]), {
                "amount": round(sum(float(p["payment_value"]) for p in paid), 2) if paid else None,
                "payment_type": PAYMENT_TYPES.get(paid[0]["payment_type"], "other") if paid else "other",
                "installments": max((int(p["payment_installments"]) for p in paid), default=None) or None,
            }),
            ("order_shipped", local_time(order["order_delivered_carrier_date"]), {}),
            ("order_delivered", local_time(order["order_delivered_customer_date"]), {}),
        ]
        if order["order_status"] == "canceled":
            known = [t for _, t, _ in steps if t is not None]
            steps.append(("order_cancelled", max(known) if known else None, {}))
        for kind, when, fields in steps:
            if when is None:
                continue
            event = _ORDER_TYPES[kind](
                type=kind, event_id=derive_event_id(SOURCE, f"{order_id}/{kind}".encode()), customer_id=customer,
                event_time=when, order_id=order_id, currency="BRL", **fields)
            stats.emitted[kind] += 1
            yield record_of(event)

    for review in _read(directory, "olist_order_reviews_dataset.csv"):
        stats.rows += 1
        text = "\n".join(p.strip() for p in (review["review_comment_title"], review["review_comment_message"])
                         if p and p.strip())
        if not text:
            stats.skipped["review_without_text"] += 1
            continue
        customer = customer_of_order.get(review["order_id"])
        if customer is None:
            stats.skipped["review_of_unknown_order"] += 1
            continue
        event = ChatMessage(
            type="chat_message",
            event_id=derive_event_id(SOURCE, f"review/{review['review_id']}/{review['order_id']}".encode()),
            customer_id=customer, event_time=local_time(review["review_creation_date"]),  # type: ignore[arg-type]
            conversation_id=review["review_id"], sender_role="customer", channel="review", text=text[:10_000],
            language="pt", rating=int(review["review_score"]))
        stats.emitted["chat_message"] += 1
        yield record_of(event)


_ORDER_TYPES: dict[str, Any] = {
    "order_placed": OrderPlaced, "order_paid": OrderPaid, "order_shipped": OrderShipped,
    "order_delivered": OrderDelivered, "order_cancelled": OrderCancelled,
}
