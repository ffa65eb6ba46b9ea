"""Property tests of what the sink does with every input record: validate(), then dead_letter() on refusal.

Whatever arrives (random bytes, random JSON, a valid event with one field mutated or a key repeated),
validate() returns an event or raises Rejected with a known reason; it never raises anything else,
and the refusal always makes a dead letter. Where the two decoders inside validate() are asked about
the same bytes they agree: whatever the msgspec fast path accepts, the pydantic contract accepts
with equal values, and whatever the contract refuses, the fast path refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.validation import REASONS, Limits, Rejected, dead_letter, validate
from tests.schemas import paths

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TOPICS = ("clickstream", "orders", "chat", "consent")
VALID = {
    "clickstream": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                    "type": "add_to_cart", "product_id": "p1", "quantity": 2, "price": 9.5, "currency": "EUR",
                    "page_url": "https://shop.example/p1", "session_id": "s1"},
    "orders": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00+02:00",
               "type": "order_placed", "order_id": "o1", "amount": 19.0, "freight": 0.5,
               "items": [{"product_id": "p", "quantity": 1, "unit_price": 9.5},
                         {"product_id": "q", "quantity": 1, "unit_price": 9.0}]},
    "chat": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "chat_message",
             "conversation_id": "k", "sender_role": "customer", "channel": "review", "text": "hello", "rating": 4},
    "consent": {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z",
                "type": "consent_changed", "channel": "sms", "status": "withdrawn", "source": "prefs"},
}
HOSTILE_STRINGS = st.sampled_from([
    "", " ", "x\n", "\x1b[31mred\x1b[0m", "a\x00b", "\u202egnp.exe", "\ud7ff", "é" * 300, "x" * 20_001,
    "1714557600", "12.5", "3", "true", "NaN", "1e400", "-1", "0001-01-01T00:00:00+01:00",
    "1970-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "2024-05-01T10:00:00", "2024-05-01T10:00:00.1234567Z",
    "page_view", "order_paid", "chat_message", "ana@example.com", "+44 20 7946 0958", "123.456.789-09",
])
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), HOSTILE_STRINGS,
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
KEYS = st.one_of(st.none(), st.just(b"c1"), st.binary(max_size=20))


def _dumps(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits: orjson cannot write them
        return None


def sink_step(topic: str, value: bytes, key: bytes | None) -> Any:
    """What the sink does with one record; returns the event, or the dead letter of a refusal."""
    try:
        event = validate(topic, value, key, Limits(), NOW)
    except Rejected as rejected:
        assert rejected.reason in REASONS, rejected.reason
        assert rejected.detail
        return dead_letter(topic, 0, 7, key, value, rejected.reason, rejected.detail, NOW)
    assert event.type and event.customer_id and event.event_time.tzinfo is not None
    assert key == event.customer_id.encode()
    assert event.event_time >= Limits().min_event_time
    return event


def agree(topic: str, value: bytes) -> None:
    """The fast path accepts only what the contract accepts, with equal values."""
    fast, contract = paths.fast(topic, value), paths.contract(topic, value)
    if fast is not None:
        assert contract is not None, "the fast path accepted what the contract refuses"
        paths.same(fast, contract)


FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(topic=st.sampled_from(TOPICS), value=st.binary(max_size=400), key=KEYS)
def test_random_bytes_never_raise(topic: str, value: bytes, key: bytes | None) -> None:
    sink_step(topic, value, key)


@FAST
@given(topic=st.sampled_from(TOPICS), value=JSON_VALUES, key=KEYS)
def test_random_json_never_raises(topic: str, value: Any, key: bytes | None) -> None:
    raw = _dumps(value)
    if raw is not None:
        sink_step(topic, raw, key)
        agree(topic, raw)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), pick=st.integers(0, 30), value=st.one_of(JSON_VALUES, HOSTILE_STRINGS),
       how=st.sampled_from(["set", "drop", "repeat", "item", "token"]), key=st.one_of(st.just(b"c1"), KEYS))
def test_near_valid_events_never_raise_and_both_paths_agree(topic: str, pick: int, value: Any, how: str,
                                                           key: bytes | None) -> None:
    body = dict(VALID[topic])
    names = sorted(body)
    name = names[pick % len(names)]
    raw: bytes | None
    if how == "drop":
        del body[name]
        raw = _dumps(body)
    elif how == "item" and topic == "orders":
        body["items"] = [dict(body["items"][0]) | {sorted(body["items"][0])[pick % 3]: value}]
        raw = _dumps(body)
    elif how == "repeat":  # the same key again, with another value: JSON allows it, the contract must not
        encoded = _dumps(value)
        raw = None if encoded is None else _dumps(body)[:-1] + b',"' + name.encode() + b'":' + encoded + b"}"
    elif how == "token":  # a bare token no JSON encoder writes, in place of the value
        token = (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"1" * 40, b"true")[pick % 7]
        raw = _dumps(body | {name: "@@"})
        raw = None if raw is None else raw.replace(b'"@@"', token)
    else:
        body[name] = value
        raw = _dumps(body)
    if raw is None:
        return
    result = sink_step(topic, raw, key)
    agree(topic, raw)
    if how == "repeat" and not hasattr(result, "dead_letter_id"):
        raise AssertionError(f"a repeated key was accepted: {raw!r}")


def test_the_valid_bases_pass_both_paths() -> None:
    for topic, body in VALID.items():
        raw = orjson.dumps(body)
        assert not hasattr(sink_step(topic, raw, b"c1"), "dead_letter_id"), topic
        fast, contract = paths.fast(topic, raw), paths.contract(topic, raw)
        assert fast is not None and contract is not None, topic
        paths.same(fast, contract)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(when=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                         timezones=st.sampled_from([UTC, *(__import__("datetime").timezone(timedelta(hours=h))
                                                           for h in (-12, -5, 1, 14))])))
def test_any_event_time_is_stored_only_inside_the_window(when: datetime) -> None:
    raw = orjson.dumps(VALID["consent"] | {"event_time": when.isoformat()})
    result = sink_step("consent", raw, b"c1")
    inside = Limits().min_event_time <= when <= NOW + Limits().max_future
    assert hasattr(result, "dead_letter_id") is not inside
    agree("consent", raw)
