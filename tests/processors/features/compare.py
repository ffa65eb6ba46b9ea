"""Comparing streamed profiles with the batch reference, feature by feature."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

COMPARED = [
    "first_seen_ms", "last_seen_ms", "active_days", "sessions", "bounce_sessions", "session_length_s",
    "session_depth", "orders_total", "first_order_ms", "last_order_ms", "recency_days", "days_between_orders",
    "orders_30d", "orders_90d", "orders_365d", "cart_items", "cart_products", "cart_since_ms", "top_categories",
    *[f"{n}_{w}" for n in ("product_views", "cart_adds", "wishlist_adds") for w in ("1h", "24h", "7d", "30d", "total")],
    "events_total", "late_events",
]


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
