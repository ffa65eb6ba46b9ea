"""Identity fields on the input contracts: customer_id or anonymous_id, identify and alias, the export."""

from __future__ import annotations

import jsonschema
import orjson
import pytest

from schemas.registry import json_schema
from schemas.validation import Limits, Rejected, validate

BASE = {"event_id": "e1", "event_time": "2026-01-01T00:00:00Z", "type": "product_view", "product_id": "p1"}


def _validate(body: dict[str, object], key: bytes, topic: str = "clickstream") -> object:
    return validate(topic, orjson.dumps(body), key, Limits())


def test_an_anonymous_event_is_read_with_its_visitor_as_customer_id() -> None:
    event = _validate({**BASE, "anonymous_id": "a-1"}, b"a-1")
    assert (event.customer_id, event.anonymous_id) == ("a-1", "a-1")


def test_a_known_event_keeps_its_customer_and_anonymous_ids() -> None:
    event = _validate({**BASE, "customer_id": "c-1", "anonymous_id": "a-1", "device_id": "d-1"}, b"c-1")
    assert (event.customer_id, event.anonymous_id, event.device_id) == ("c-1", "a-1", "d-1")


@pytest.mark.parametrize(("body", "detail"), [
    (BASE, "neither customer_id nor anonymous_id"),
    ({**BASE, "type": "identify", "anonymous_id": "a-1", "product_id": None}, "identify event needs a customer_id"),
    ({"event_id": "e1", "event_time": "2026-01-01T00:00:00Z", "type": "alias", "previous_id": "c-0",
      "anonymous_id": "a-1"}, "alias event needs a customer_id"),
])
def test_a_record_without_a_subject_is_a_dead_letter_with_the_reason(body: dict[str, object], detail: str) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(Rejected) as refused:
        _validate(body, b"a-1")
    assert refused.value.reason == "missing_identity"
    assert detail in refused.value.detail


def test_orders_chat_and_consent_accept_an_anonymous_subject_too() -> None:
    body = {"event_id": "e1", "event_time": "2026-01-01T00:00:00Z", "type": "consent_changed", "channel": "email",
            "status": "granted", "anonymous_id": "a-9"}
    assert _validate(body, b"a-9", "consent").customer_id == "a-9"


def test_a_clear_email_as_an_identifier_is_refused() -> None:
    with pytest.raises(Rejected) as refused:
        _validate({**BASE, "customer_id": "c-1", "email_hash": "ana@example.com"}, b"c-1")
    assert refused.value.reason == "clear_identifier"


def test_the_exported_schema_requires_customer_id_or_anonymous_id() -> None:
    schema = json_schema("clickstream")
    jsonschema.validate({**BASE, "anonymous_id": "a-1"}, schema)
    jsonschema.validate({**BASE, "customer_id": "c-1"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(BASE, schema)
    identify = {"event_id": "e1", "event_time": "2026-01-01T00:00:00Z", "type": "identify", "customer_id": "c-1",
                "anonymous_id": "a-1"}
    jsonschema.validate(identify, schema)
    assert {"identify", "alias"} <= set(schema["discriminator"]["mapping"])
