"""The contracts: what they accept, what they refuse, and their JSON Schema export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from schemas.registry import ALL_TOPICS, INPUT_TOPICS, TOPIC_OF_TYPE, export_json_schemas

ENVELOPE = {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T12:00:00+02:00"}

EXAMPLES: dict[str, list[dict[str, object]]] = {
    "clickstream": [
        {"type": "page_view", "page_url": "/", "utm_source": "newsletter"},
        {"type": "product_view", "product_id": "p1", "category_id": "shoes", "price": 59.9, "currency": "EUR"},
        {"type": "search", "query": "red shoes", "results": 12},
        {"type": "add_to_cart", "product_id": "p1", "quantity": 2, "price": 59.9},
        {"type": "remove_from_cart", "product_id": "p1"},
        {"type": "add_to_wishlist", "product_id": "p2"},
        {"type": "checkout_started", "cart_value": 119.8, "items": 2, "session_id": "s1", "channel": "app"},
        {"type": "identify", "anonymous_id": "a1", "device_id": "d1", "email_hash": "h-0f3a", "loyalty_id": "L9"},
        {"type": "alias", "previous_id": "c0"},
    ],
    "orders": [
        {"type": "order_placed", "order_id": "o1", "amount": 119.8, "currency": "EUR",
         "items": [{"product_id": "p1", "quantity": 2, "unit_price": 59.9}]},
        {"type": "order_paid", "order_id": "o1", "amount": 119.8, "payment_type": "credit_card", "installments": 3},
        {"type": "order_shipped", "order_id": "o1"},
        {"type": "order_delivered", "order_id": "o1"},
        {"type": "order_cancelled", "order_id": "o1", "reason": "changed mind"},
        {"type": "order_refunded", "order_id": "o1", "amount": 59.9},
    ],
    "chat": [{"type": "chat_message", "conversation_id": "k1", "sender_role": "customer", "channel": "review",
              "text": "Produto chegou quebrado", "language": "pt", "rating": 1}],
    "consent": [{"type": "consent_changed", "channel": "email", "status": "withdrawn"}],
}


@pytest.mark.parametrize(("topic", "body"), [(t, b) for t, bodies in EXAMPLES.items() for b in bodies])
def test_every_event_type_validates_and_normalises_time_to_utc(topic: str, body: dict[str, object]) -> None:
    event = INPUT_TOPICS[topic].adapter.validate_python({**ENVELOPE, **body})
    assert event.event_time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert event.event_time.utcoffset().total_seconds() == 0
    assert event.schema_version == 1


def test_examples_cover_every_event_type() -> None:
    covered = {body["type"] for bodies in EXAMPLES.values() for body in bodies}
    assert covered == set(TOPIC_OF_TYPE)


@pytest.mark.parametrize(("change", "field"), [
    ({"event_time": "2024-05-01T12:00:00"}, "event_time"),  # naive: zone unknown
    ({"customer_id": ""}, "customer_id"),
    ({"customer_id": " padded "}, "customer_id"),
    ({"schema_version": 2}, "schema_version"),
    ({"surprise": 1}, "surprise"),
])
def test_envelope_rules(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        INPUT_TOPICS["clickstream"].adapter.validate_python({**ENVELOPE, "type": "page_view", **change})
    assert field in str(info.value)


def test_type_specific_fields_are_required() -> None:
    adapter = INPUT_TOPICS["clickstream"].adapter
    with pytest.raises(ValidationError, match="product_id"):
        adapter.validate_python({**ENVELOPE, "type": "add_to_cart"})
    with pytest.raises(ValidationError, match="query"):
        adapter.validate_python({**ENVELOPE, "type": "search"})


def test_json_schema_export_writes_every_topic_and_accepts_valid_events(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path)
    assert {p.name for p in written} == {f"{t}.v1.json" for t in ALL_TOPICS}
    for topic, bodies in EXAMPLES.items():
        schema = json.loads((tmp_path / f"{topic}.v1.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        for body in bodies:
            event = {**ENVELOPE, **body}
            assert not list(validator.iter_errors(event)), (topic, body)
        assert list(validator.iter_errors({**ENVELOPE, "type": "nonsense"})), "unknown types are refused"
