"""Comparing streamed profiles with the batch reference, feature by feature."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd

WINDOWS = ("1h", "24h", "7d", "30d", "total")
#: Every value of a profile: the features, and the profile's own fields (times in epoch ms).
COMPARED = [
    *[f"{n}_{w}" for n in ("page_views", "product_views", "searches", "cart_adds", "cart_removes", "wishlist_adds",
                           "checkouts") for w in WINDOWS],
    "first_seen_ms", "last_seen_ms", "active_days",
    "sessions", "bounce_sessions", "session_length_s", "session_depth",
    "cart_items", "cart_products", "cart_value", "cart_unpriced_items", "cart_last_change_ms", "cart_since_ms",
    "checkout_open", "checkout_started_ms",
    "orders_total", "revenue_total", "average_order_value", "orders_30d", "orders_90d", "orders_365d", "revenue_30d",
    "revenue_90d", "revenue_365d", "first_order_ms", "last_order_ms", "recency_days", "days_between_orders",
    "orders_cancelled", "orders_refunded", "refunded_total", "orders_delivered", "last_delivered_ms",
    "acquisition_channel", "acquisition_source", "top_categories", "top_brands",
    "chat_messages", "chat_customer_messages", "conversations", "last_sentiment", "sentiment_7d",
    "unresolved_conversations", "negative_streak", "late_events",
    "events_total", "as_of_ms", "stage", "stage_since_ms", "segments",
]


def _ms(value: str | datetime | None) -> int | None:
    if value is None:
        return None
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:  # ClickHouse gives its UTC columns as naive datetimes
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def flat(record: dict[str, Any]) -> dict[str, Any]:
    """A ``customer-features`` record (or a ``customer_profiles`` row: times as datetimes, features as JSON)
    as one dict of the names in :data:`COMPARED`."""
    features = record["features"]
    return {**(orjson.loads(features) if isinstance(features, str) else features),
            "events_total": record["events_total"], "as_of_ms": _ms(record["as_of"]), "stage": record["stage"],
            "stage_since_ms": _ms(record["stage_since"]), "segments": list(record["segments"])}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(got: Any, want: Any) -> bool:
    if _missing(got) or _missing(want):
        return _missing(got) and _missing(want)
    if isinstance(got, float) or isinstance(want, float):
        return math.isclose(float(got), float(want), rel_tol=1e-12, abs_tol=1e-9)
    return bool(got == want)


def differences(streamed: dict[str, dict[str, Any]], expected: pd.DataFrame,
                names: list[str] = COMPARED) -> list[tuple[str, str, Any, Any]]:
    """(customer, feature, streamed, expected) for every disagreement, plus customers on one side only."""
    out: list[tuple[str, str, Any, Any]] = []
    for customer in sorted(set(streamed) ^ set(expected.index)):
        out.append((customer, "(profile)", customer in streamed, customer in expected.index))
    for customer, row in expected.iterrows():
        got = streamed.get(str(customer))
        if got is None:
            continue
        for name in names:
            if not _same(got.get(name), row[name]):
                out.append((str(customer), name, got.get(name), row[name]))
    return out
