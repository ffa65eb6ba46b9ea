"""Taobao UserBehavior replay: pv, cart, fav -> clickstream; buy -> orders.

Columns ``user_id,item_id,category_id,behavior_type,timestamp`` (unix seconds, UTC); the
header row is optional (the published file has none, the shared sample has one).

- ``pv`` -> ``product_view``, ``cart`` -> ``add_to_cart``, ``fav`` -> ``add_to_wishlist``,
  ``buy`` -> ``order_placed`` with one item (quantity 1); ``customer_id`` is ``user_id``.
- Taobao has no prices: items carry no ``unit_price`` and orders no ``amount`` (revenue
  stays unknown, not zero); ``currency`` says CNY for the record. Nor has it order ids or
  sessions: the order id is derived from the row's event id, and sessions are derived
  downstream from event time. The channel is "app" (Taobao is a mobile marketplace).
- Rows that give no record are counted per reason in :class:`ReplayStats`:
  ``malformed_row`` (not five columns), ``bad_identifier`` (an empty or blank id),
  ``bad_timestamp`` (not unix seconds) and ``unknown_behavior_type``.

Records are built as dicts and serialized with orjson (several times faster than
constructing pydantic events); every field is checked here, so each record satisfies its
topic's contract (the tests validate every one).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.sources.record import Occurrences, SourceRecord, derive_event_id, record_of_dict, sort_by_event_time
from streams.sources.stats import ReplayStats

SOURCE = "taobao"
HEADER = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
CLICK_TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist"}
#: The contract's identifier rule (``schemas.base.Identifier``).
_IDENTIFIER = re.compile(r"\S(?:.{0,126}\S)?")


def taobao(path: Path, stats: ReplayStats | None = None) -> list[SourceRecord]:
    """Every usable row as a record, sorted by event time (stable); ``stats`` counts what was read and skipped."""
    stats = stats if stats is not None else ReplayStats()
    return sort_by_event_time(list(_records(path, stats)))


def _records(path: Path, stats: ReplayStats) -> Iterator[SourceRecord]:
    occurrences = Occurrences()
    valid = _IDENTIFIER.fullmatch
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            return
        if first != HEADER and not (len(first) == 5 and first[4].isdigit()):
            raise ValueError(f"{path}: not a Taobao UserBehavior file (first row {first}, expected {HEADER})")
        rows: Iterator[list[str]] = reader if first == HEADER else _chain(first, reader)
        for row in rows:
            stats.rows += 1
            if len(row) != 5:
                stats.skipped["malformed_row"] += 1
                continue
            user, item, category, behavior, timestamp = row
            kind = "order_placed" if behavior == "buy" else CLICK_TYPES.get(behavior)
            if kind is None:
                stats.skipped["unknown_behavior_type"] += 1
                continue
            if not (valid(user) and valid(item) and valid(category)):
                stats.skipped["bad_identifier"] += 1
                continue
            try:
                when = datetime.fromtimestamp(int(timestamp), UTC)
            except (ValueError, OverflowError, OSError):
                stats.skipped["bad_timestamp"] += 1
                continue
            content = ",".join(row).encode()
            event_id = derive_event_id(SOURCE, content, occurrences.next(content))
            body: dict[str, Any] = {"type": kind, "event_id": event_id, "customer_id": user, "event_time": when}
            if kind == "order_placed":
                body["order_id"] = f"taobao-order-{event_id[len(SOURCE) + 1:]}"
                body["currency"] = "CNY"
                body["items"] = [{"product_id": item, "category_id": category, "quantity": 1}]
            else:
                body["product_id"] = item
                body["category_id"] = category
            body["channel"] = "app"
            stats.emitted[kind] += 1
            yield record_of_dict(body, when)


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest
