"""The fast decoder is sound: whatever it accepts, the pydantic contract accepts, with equal values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas.registry import INPUT_TOPICS
from schemas.validation import Limits, Rejected, validate
from streams.sources import open_source
from streams.sources.generator import generate
from tests.schemas.paths import same

#: Reasons validate() gives after the contract accepted the record.
AFTER_CONTRACT = ("future_timestamp", "event_time_out_of_range", "duplicate_key", "clear_identifier", "key_mismatch")


def _key_of(value: bytes) -> bytes:
    """The record key a producer keying by customer would give ``value`` (b"" when it names none)."""
    try:
        customer = orjson.loads(value).get("customer_id")
    except (orjson.JSONDecodeError, AttributeError):
        return b""
    try:
        return customer.encode() if isinstance(customer, str) else b""
    except UnicodeEncodeError:  # a lone surrogate: refused as key_mismatch, after the contract accepted it
        return b""


def check(topic: str, value: bytes) -> bool:
    """Soundness on one input, through validate(): True when the fast path accepted it."""
    try:
        event = validate(topic, value, _key_of(value), Limits(max_future=timedelta(days=36500)))
    except Rejected as rejected:
        if rejected.reason not in AFTER_CONTRACT:
            with pytest.raises(ValidationError):
                INPUT_TOPICS[topic].adapter.validate_json(value)
        return False
    model = INPUT_TOPICS[topic].adapter.validate_json(value)  # must not raise
    same(event, model)
    return not isinstance(event, BaseModel)


def test_generated_traffic_takes_the_fast_path() -> None:
    records = generate(customers=150, days=20, seed=2)
    assert all(check(r.topic, r.value) for r in records)


@pytest.mark.parametrize("spec", ["taobao:taobao_userbehavior_sample.csv", "olist:olist", "twcs:twcs_head5000.csv"])
def test_dataset_replays_take_the_fast_path(datasets: Path, spec: str) -> None:
    kind, name = spec.split(":")
    records, _ = open_source(f"{kind}:{datasets / name}")
    assert all(check(r.topic, r.value) for r in records[::7])


BASES = {
    "clickstream": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                    "type": "add_to_cart", "product_id": "p1", "quantity": 2, "price": 9.5, "currency": "EUR"},
    "orders": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00+02:00",
               "type": "order_placed", "order_id": "o1", "amount": 19.0,
               "items": [{"product_id": "p", "quantity": 1, "unit_price": 9.5}]},
    "chat": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "chat_message",
             "conversation_id": "k", "sender_role": "customer", "channel": "email", "text": "hello", "rating": 4},
    "consent": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                "type": "consent_changed", "channel": "sms", "status": "withdrawn"},
}
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**10), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), st.sampled_from([" x", "x ", "x\n", "\n", "", "é", "2024-05-01T10:00:00", "1714557600",
                                           "2024-05-01 10:00:00Z", "2024-05-01T10:00:00.123456789Z", "10", "1e3",
                                           "2024-02-30T10:00:00Z", "24:00", "USD", "usd", "web", "page_view"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(sorted(BASES)), field=st.text(min_size=1, max_size=15), value=ODD_VALUES,
       pick=st.integers(0, 20), drop=st.booleans())
def test_mutated_events_never_pass_the_fast_path_alone(topic: str, field: str, value: Any, pick: int,
                                                        drop: bool) -> None:
    body = dict(BASES[topic])
    names = sorted(body)
    target = names[pick % len(names)] if pick < 15 else field
    if drop and target in body:
        del body[target]
    else:
        body[target] = value
    try:
        raw = orjson.dumps(body)
    except TypeError:
        return
    try:
        check(topic, raw)
    except ValidationError as exc:
        pytest.fail(f"the fast path accepted what the contract refuses: {raw!r}: {exc}")


@pytest.mark.parametrize("value", [" x", "x ", "x\ny", "\t", "x\u3000", "\u00a0x", "x\x1c", "a b", "x", "é.é"])
@pytest.mark.parametrize(("topic", "field"), [("clickstream", "event_id"), ("clickstream", "product_id"),
                                              ("orders", "order_id"), ("chat", "conversation_id")])
def test_identifiers_are_checked_like_the_pattern(topic: str, field: str, value: str) -> None:
    """The fast identifier check (no regex) agrees with the contract's pattern.

    Python counts U+001C-U+001F as whitespace and Rust's regex does not: there the fast path
    refuses and pydantic accepts (stricter is sound; the event still gets through).
    """
    record = orjson.dumps(BASES[topic] | {field: value})
    try:
        INPUT_TOPICS[topic].adapter.validate_json(record)
        contract_accepts = True
    except ValidationError:
        contract_accepts = False
    fast_accepted = check(topic, record)  # also asserts that validate() agrees with the contract
    assert fast_accepted is (contract_accepts and "\x1c" not in value)
