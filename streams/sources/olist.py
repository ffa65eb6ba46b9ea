"""Olist replay: orders, items, payments and status changes -> orders; review texts -> chat.

Reads a directory of the Olist CSVs (``olist_orders_dataset.csv``, ``..._order_items_...``,
``..._order_payments_...``, ``..._order_reviews_...``, ``..._customers_...``,
``..._products_...`` and ``product_category_name_translation.csv``).

- The customer is ``customer_unique_id`` (the person; Olist's ``customer_id`` is per order).
  With ``per_order_ids`` the events name no customer: an order's events (and its review) carry
  Olist's per-order ``customer_id`` as ``anonymous_id`` and the person as ``loyalty_id``, as a shop
  sees them before identity resolution, which must join each person's orders into one profile
  (the real-data test of linking: tests/processors/identity/, tests/integration/).
- Olist times are local Brazil time with no zone: they are read as America/Sao_Paulo
  (zoneinfo; an ambiguous hour at the end of summer time counts as summer time, a time
  in the spring-forward gap is read with the pre-gap offset, i.e. an hour on) and
  converted to UTC.
- Per order: ``order_placed`` at ``order_purchase_timestamp`` (one item per order-item row,
  ``unit_price`` = price, category in English when translated; ``amount`` = items +
  freight, ``freight`` = the freight sum, BRL; an order with no item rows, as Olist's
  "unavailable" ones, sold nothing: amount 0), ``order_paid`` at ``order_approved_at``
  (``amount`` = sum of payments, ``installments`` = the largest, ``payment_type`` of the
  largest payment, "not_defined" -> "other"), ``order_shipped`` at
  ``order_delivered_carrier_date``, ``order_delivered`` at ``order_delivered_customer_date``.
  A missing timestamp means the step did not happen.
- ``order_cancelled`` for status "canceled": Olist records no cancel time, so the order's
  latest known timestamp is used.
- Reviews with a title and/or message become customer chat messages (channel "review",
  language "pt", ``rating`` = score, ``conversation_id`` = review id, text = title + newline
  + message, trimmed) at ``review_creation_date``.
- Event ids derive from a content key (order id + event type; review id + order id), so
  every lifecycle step has its own stable id.
- Counted as skipped, per reason: ``review_without_text``, ``review_of_unknown_order``,
  ``order_without_customer``, ``duplicate_order_id``, ``bad_timestamp`` (a time that does
  not parse), ``bad_number`` (an item or payment value that is not a number) and
  ``invalid_<event type>`` (a value the contract refuses).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from schemas.chat import ChatMessage
from schemas.orders import OrderCancelled, OrderDelivered, OrderPaid, OrderPlaced, OrderShipped
from streams.sources.record import SourceRecord, derive_event_id, record_of, sort_by_event_time
from streams.sources.stats import ReplayStats

SOURCE = "olist"
BRAZIL = ZoneInfo("America/Sao_Paulo")
PAYMENT_TYPES = {"credit_card": "credit_card", "boleto": "boleto", "voucher": "voucher", "debit_card": "debit_card"}
ORDER_TYPES: dict[str, type[BaseModel]] = {
    "order_placed": OrderPlaced, "order_paid": OrderPaid, "order_shipped": OrderShipped,
    "order_delivered": OrderDelivered, "order_cancelled": OrderCancelled,
}
#: Lifecycle step -> the orders-table column holding its time.
STEP_COLUMNS = {
    "order_placed": "order_purchase_timestamp", "order_paid": "order_approved_at",
    "order_shipped": "order_delivered_carrier_date", "order_delivered": "order_delivered_customer_date",
}
Row = dict[str, str]


def local_time(text: str) -> datetime | None:
    """An Olist timestamp (Sao Paulo local time, no zone) in UTC, or None when empty; ValueError when unreadable."""
    text = text.strip()
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=BRAZIL).astimezone(UTC)


def _read(directory: Path, name: str) -> list[Row]:
    path = directory / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (an Olist directory holds the olist_*_dataset.csv files)")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def olist(directory: Path, stats: ReplayStats | None = None, *, per_order_ids: bool = False) -> list[SourceRecord]:
    """Every order lifecycle step and review text as records, sorted by event time (stable).

    ``per_order_ids``: subjects as per-order anonymous ids linked by the person's loyalty id (module docstring).
    """
    stats = stats if stats is not None else ReplayStats()
    return sort_by_event_time(list(_events(directory, stats, per_order_ids)))


def _subject(person: str, order_customer: str, per_order_ids: bool) -> dict[str, str]:
    """The identity fields of an order's events: the person, or the per-order id linked by the person."""
    return {"anonymous_id": order_customer, "loyalty_id": person} if per_order_ids else {"customer_id": person}


def _validated(model: type[BaseModel], stats: ReplayStats, **fields: Any) -> SourceRecord | None:
    """The record of ``model(**fields)``, or None with the refusal counted (a bad row never stops the replay)."""
    try:
        event = model(**fields)
    except ValidationError:
        stats.skipped[f"invalid_{fields['type']}"] += 1
        return None
    stats.emitted[fields["type"]] += 1
    return record_of(event)


def _events(directory: Path, stats: ReplayStats, per_order_ids: bool) -> Iterator[SourceRecord]:
    person = {row["customer_id"]: row["customer_unique_id"] for row in _read(directory, "olist_customers_dataset.csv")}
    english = {row["product_category_name"]: row["product_category_name_english"]
               for row in _read(directory, "product_category_name_translation.csv")}
    category = {row["product_id"]: english.get(row["product_category_name"]) or row["product_category_name"] or None
                for row in _read(directory, "olist_products_dataset.csv")}
    items: dict[str, list[Row]] = defaultdict(list)
    for row in _read(directory, "olist_order_items_dataset.csv"):
        items[row["order_id"]].append(row)
    payments: dict[str, list[Row]] = defaultdict(list)
    for row in _read(directory, "olist_order_payments_dataset.csv"):
        payments[row["order_id"]].append(row)

    customer_of_order: dict[str, dict[str, str]] = {}  # order id -> the identity fields of its events
    for order in _read(directory, "olist_orders_dataset.csv"):
        stats.rows += 1
        order_id = order["order_id"]
        customer = person.get(order["customer_id"])
        if customer is None:
            stats.skipped["order_without_customer"] += 1
            continue
        if order_id in customer_of_order:
            stats.skipped["duplicate_order_id"] += 1
            continue
        try:
            times = {kind: local_time(order[column]) for kind, column in STEP_COLUMNS.items()}
        except ValueError:
            stats.skipped["bad_timestamp"] += 1
            continue
        try:
            fields = {"order_placed": _placed(items.get(order_id, []), category),
                      "order_paid": _paid(payments.get(order_id, []))}
        except ValueError:  # a price, freight or payment that is not a number
            stats.skipped["bad_number"] += 1
            continue
        subject = customer_of_order[order_id] = _subject(customer, order["customer_id"], per_order_ids)
        if order["order_status"] == "canceled":
            known = [t for t in times.values() if t is not None]
            times["order_cancelled"] = max(known) if known else None
        for kind, when in times.items():
            if when is None:
                continue
            record = _validated(ORDER_TYPES[kind], stats, type=kind, **subject, event_time=when,
                                event_id=derive_event_id(SOURCE, f"{order_id}/{kind}".encode()),
                                order_id=order_id, currency="BRL", **fields.get(kind, {}))
            if record is not None:
                yield record

    for review in _read(directory, "olist_order_reviews_dataset.csv"):
        stats.rows += 1
        text = "\n".join(part.strip() for part in (review["review_comment_title"], review["review_comment_message"])
                         if part and part.strip())
        if not text:
            stats.skipped["review_without_text"] += 1
            continue
        subject = customer_of_order.get(review["order_id"])
        if subject is None:
            stats.skipped["review_of_unknown_order"] += 1
            continue
        try:
            when = local_time(review["review_creation_date"])
        except ValueError:
            when = None
        if when is None:
            stats.skipped["bad_timestamp"] += 1
            continue
        record = _validated(
            ChatMessage, stats, type="chat_message", **subject, event_time=when,
            event_id=derive_event_id(SOURCE, f"review/{review['review_id']}/{review['order_id']}".encode()),
            conversation_id=review["review_id"], sender_role="customer", channel="review", text=text,
            language="pt", rating=_score(review["review_score"]))
        if record is not None:
            yield record


def _placed(lines: list[Row], category: dict[str, str | None]) -> dict[str, Any]:
    """Items, amount (items + freight) and freight of an order (0 for an order without item rows)."""
    price = sum(float(line["price"]) for line in lines)
    freight = sum(float(line["freight_value"]) for line in lines)
    return {
        "items": [{"product_id": line["product_id"], "category_id": category.get(line["product_id"]),
                   "unit_price": float(line["price"])} for line in lines],
        "amount": round(price + freight, 2),
        "freight": round(freight, 2),
    }


def _score(text: str) -> int | str:
    """A review score from the CSV as the contract's integer (the contract takes no numbers as strings);
    anything else is kept, for the contract to refuse and the replay to count as invalid."""
    return int(text) if text.strip().isdigit() else text


def _paid(payments: list[Row]) -> dict[str, Any]:
    """Amount paid (all payments), most installments, and the type of the largest payment."""
    if not payments:
        return {}
    largest = max(payments, key=lambda p: (float(p["payment_value"]), -int(p["payment_sequential"])))
    installments = max(int(p["payment_installments"]) for p in payments)
    return {
        "amount": round(sum(float(p["payment_value"]) for p in payments), 2),
        "payment_type": PAYMENT_TYPES.get(largest["payment_type"], "other"),
        "installments": installments if installments >= 1 else None,
    }
