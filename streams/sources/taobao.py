"""Taobao UserBehavior replay: pv, cart, fav -> clickstream; buy -> orders.

Taobao has no prices and no sessions: orders carry one item with no unit price and no
amount (revenue stays unknown, not zero), and sessions are derived downstream from
event time. The channel is "app" (Taobao is a mobile marketplace).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from schemas.clickstream import AddToCart, AddToWishlist, ProductView
from schemas.orders import OrderItem, OrderPlaced
from streams.sources.record import Occurrences, SourceRecord, derive_event_id, record_of
from streams.sources.stats import ReplayStats

SOURCE = "taobao"
_CLICKS = {"pv": ProductView, "cart": AddToCart, "fav": AddToWishlist}
_TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist"}


def taobao(path: Path, stats: ReplayStats | None = None) -> list[SourceRecord]:
    """Every row as a record, sorted by event time (stable)."""
    stats = stats or ReplayStats()
    records = list(_rows(path, stats))
    records.sort(key=lambda r: r.event_time or datetime.max.replace(tzinfo=UTC))
    return records


def _rows(path: Path, stats: ReplayStats) -> Iterator[SourceRecord]:
    occurrences = Occurrences()
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if header[:5] != ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]:
            raise ValueError(f"{path}: not a Taobao UserBehavior file (header {header})")
        for row in reader:
            stats.rows += 1
            user, item, category, behavior, timestamp = row[:5]
            content = ",".join(row).encode()
            event_id = derive_event_id(SOURCE, content, occurrences.next(content))
            when = datetime.fromtimestamp(int(timestamp), UTC)
            common = {"event_id": event_id, "customer_id": user, "event_time": when}
            if behavior == "buy":
                event = OrderPlaced(type="order_placed", order_id=f"taobao-order-{event_id[7:]}", channel="app",
                                    items=[OrderItem(product_id=item, category_id=category)], **common)
            elif behavior in _CLICKS:
                event = _CLICKS[behavior](type=_TYPES[behavior], product_id=item, category_id=category,  # type: ignore[call-arg]
                                          channel="app", **common)
            else:
                stats.skipped[f"unknown_behavior_{behavior}"] += 1
                continue
            stats.emitted[event.type] += 1
            yield record_of(event)
