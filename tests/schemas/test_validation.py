"""validate(): every way an input can be wrong maps to one reason code; dead letters are stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.validation import Limits, Rejected, dead_letter, dead_letter_id, validate

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def view(**change: object) -> bytes:
    body = {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "page_view"}
    body.update(change)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize(("value", "reason"), [
    (None, "empty_value"),
    (b"", "empty_value"),
    (b"{", "malformed_json"),
    (b"\xff\xfe", "malformed_json"),
    (b'"text"', "not_an_object"),
    (view(type="teleport"), "unknown_event_type"),
    (view(type="order_paid", order_id="o"), "wrong_topic"),
    (view(type=None), "missing_field"),
    (view(event_id=None), "missing_id"),
    (view(customer_id=""), "missing_id"),
    (view(event_time="yesterday"), "invalid_timestamp"),
    (view(event_time="2024-05-01T10:00:00"), "invalid_timestamp"),
    (view(event_time="2024-06-01T00:06:00Z"), "future_timestamp"),
    (view(schema_version=7), "unsupported_schema_version"),
    (view(extra_field=1), "unknown_field"),
    (view(channel="carrier-pigeon"), "invalid_field"),
    (view(page_url="x" * 70_000), "oversized"),
])
def test_reasons(value: bytes | None, reason: str) -> None:
    key = b"c1"
    with pytest.raises(Rejected) as info:
        validate("clickstream", value, key, Limits(), NOW)
    assert info.value.reason == reason
    assert info.value.detail


def test_accepts_a_valid_event_within_the_future_allowance() -> None:
    event = validate("clickstream", view(event_time="2024-06-01T00:04:00Z"), b"c1", Limits(), NOW)
    assert event.event_time == NOW + timedelta(minutes=4)


def test_key_must_be_the_customer() -> None:
    with pytest.raises(Rejected) as info:
        validate("clickstream", view(), b"c2", Limits(), NOW)
    assert info.value.reason == "key_mismatch"
    assert validate("clickstream", view(), b"c1", Limits(), NOW).customer_id == "c1"


def test_a_keyless_record_is_missing_key() -> None:
    """It lands on a random partition, not its customer's: refused (it was accepted before)."""
    with pytest.raises(Rejected) as info:
        validate("clickstream", view(), None, Limits(), NOW)
    assert info.value.reason == "missing_key"
    with pytest.raises(Rejected) as info:  # what is wrong with the value is said first
        validate("clickstream", b"{", None, Limits(), NOW)
    assert info.value.reason == "malformed_json"


def test_details_never_echo_the_offending_value() -> None:
    secret = "alice@example.com"
    with pytest.raises(Rejected) as info:
        validate("clickstream", view(channel=secret), b"c1", Limits(), NOW)
    assert secret not in info.value.detail


def test_dead_letter_id_is_stable_and_distinguishes_topic_key_and_value() -> None:
    a = dead_letter_id("clickstream", b"k", b"v")
    assert a == dead_letter_id("clickstream", b"k", b"v")
    assert len({a, dead_letter_id("orders", b"k", b"v"), dead_letter_id("clickstream", b"k2", b"v"),
                dead_letter_id("clickstream", b"k", b"v2"), dead_letter_id("clickstream", b"kv", b"")}) == 5


def test_dead_letter_keeps_original_bytes_of_any_size() -> None:
    big = b"x" * 200_000
    letter = dead_letter("chat", 3, 42, None, big, "oversized", "too big", NOW)
    import base64

    assert base64.b64decode(letter.original) == big
    assert letter.key is None and letter.source_partition == 3 and letter.source_offset == 42
