"""SourceRecord helpers: stable ids, serialization that round-trips, stable sorting."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.registry import INPUT_TOPICS
from streams.sources.record import (
    Occurrences,
    SourceRecord,
    derive_event_id,
    record_of,
    record_of_dict,
    sort_by_event_time,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ENVELOPE = {"event_id": "e-1", "customer_id": "c-1", "event_time": T0}
ONE_OF_EACH: list[dict[str, Any]] = [
    {"type": "page_view", "page_url": "/", "channel": "web"},
    {"type": "product_view", "product_id": "p1", "price": 9.5, "currency": "EUR"},
    {"type": "search", "query": "shoes", "results": 3},
    {"type": "add_to_cart", "product_id": "p1", "quantity": 2},
    {"type": "remove_from_cart", "product_id": "p1"},
    {"type": "add_to_wishlist", "product_id": "p1"},
    {"type": "checkout_started", "cart_value": 19.0, "items": 2},
    {"type": "order_placed", "order_id": "o1", "items": [{"product_id": "p1", "quantity": 2}], "amount": 19.0},
    {"type": "order_paid", "order_id": "o1", "payment_type": "boleto", "installments": 2},
    {"type": "order_shipped", "order_id": "o1"},
    {"type": "order_delivered", "order_id": "o1"},
    {"type": "order_cancelled", "order_id": "o1", "reason": "late"},
    {"type": "order_refunded", "order_id": "o1", "amount": 5.0},
    {"type": "chat_message", "conversation_id": "k", "sender_role": "customer", "channel": "email", "text": "hi"},
    {"type": "consent_changed", "channel": "sms", "status": "withdrawn"},
]


def test_derived_ids_are_stable_and_distinguish_source_content_and_occurrence() -> None:
    first = derive_event_id("taobao", b"1,2,3,pv,1511544070")
    assert first == derive_event_id("taobao", b"1,2,3,pv,1511544070", 0)
    assert re.fullmatch(r"taobao-[0-9a-f]{32}", first)
    others = {derive_event_id("taobao", b"1,2,3,pv,1511544070", 1), derive_event_id("olist", b"1,2,3,pv,1511544070"),
              derive_event_id("taobao", b"1,2,3,pv,1511544071")}
    assert first not in others and len(others) == 3


def test_occurrences_count_repeats_of_the_same_content() -> None:
    seen = Occurrences()
    assert [seen.next(b"a"), seen.next(b"b"), seen.next(b"a"), seen.next(b"a")] == [0, 0, 1, 2]


@pytest.mark.parametrize("fields", ONE_OF_EACH, ids=lambda f: f["type"])
def test_record_of_round_trips_through_the_topic_contract(fields: dict[str, Any]) -> None:
    topic = next(t for t, c in INPUT_TOPICS.items() if fields["type"] in c.event_types)
    event = INPUT_TOPICS[topic].adapter.validate_python({**ENVELOPE, **fields})
    record = record_of(event)
    assert (record.topic, record.key, record.event_time) == (topic, b"c-1", T0)
    assert INPUT_TOPICS[topic].adapter.validate_json(record.value) == event
    assert b"null" not in record.value, "absent optional fields are left out, not null"


def test_record_of_dict_adds_the_schema_version_and_writes_utc_with_z() -> None:
    record = record_of_dict({"type": "page_view", **ENVELOPE}, T0)
    assert record.topic == "clickstream" and record.key == b"c-1"
    assert b'"event_time":"2024-03-01T12:00:00Z"' in record.value and b'"schema_version":1' in record.value
    assert INPUT_TOPICS["clickstream"].adapter.validate_json(record.value).event_time == T0


def test_records_are_frozen() -> None:
    record = SourceRecord("clickstream", b"k", b"{}", T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.topic = "orders"  # type: ignore[misc]


def test_sorting_is_stable_with_unknown_times_last() -> None:
    records = [SourceRecord("clickstream", str(i).encode(), b"{}", t) for i, t in
               enumerate([T0 + timedelta(1), None, T0, T0 + timedelta(1), None, T0])]
    assert [r.key for r in sort_by_event_time(records)] == [b"2", b"5", b"0", b"3", b"1", b"4"]
