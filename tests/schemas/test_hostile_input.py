"""Hostile input on the input topics: strict wire types, duplicate keys, implausible times, bombs.

Each case goes through validate() (what the sink and processors call) and through each of its two
decoders alone: the msgspec fast path and the pydantic contract must give the same verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.validation import Limits, Rejected, validate
from tests.schemas import paths

NOW = datetime(2024, 6, 1, tzinfo=UTC)
CART = {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "add_to_cart",
        "product_id": "p1", "quantity": 2, "price": 9.5, "currency": "EUR"}
ORDER = {"event_id": "e2", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "order_placed",
         "order_id": "o1", "amount": 19.0, "items": [{"product_id": "p", "quantity": 2, "unit_price": 9.5}]}
SEARCH = {"event_id": "e3", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "search",
          "query": "shoes"}
CHAT = {"event_id": "e4", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "chat_message",
        "conversation_id": "k", "sender_role": "customer", "channel": "review", "text": "ok", "rating": 4}


def reason(topic: str, value: bytes, key: bytes | None = b"c1", limits: Limits | None = None) -> str:
    """validate()'s reason for refusing ``value``; fails the test when it is accepted."""
    with pytest.raises(Rejected) as refused:
        validate(topic, value, key, limits or Limits(), NOW)
    return refused.value.reason


def both_refuse(topic: str, value: bytes) -> None:
    assert paths.fast(topic, value) is None, "the fast path accepted it"
    assert paths.contract(topic, value) is None, "the contract accepted it"


@pytest.mark.parametrize(("topic", "body"), [
    ("clickstream", CART | {"quantity": "3"}),
    ("clickstream", CART | {"quantity": True}),
    ("clickstream", CART | {"quantity": 3.0}),
    ("clickstream", CART | {"price": "12.5"}),
    ("clickstream", CART | {"price": True}),
    ("clickstream", CART | {"schema_version": "1"}),
    ("clickstream", SEARCH | {"results": "10"}),
    ("orders", ORDER | {"amount": "12.5"}),
    ("orders", ORDER | {"amount": True}),
    ("orders", ORDER | {"items": [{"product_id": "p", "quantity": "3"}]}),
    ("orders", ORDER | {"items": [{"product_id": "p", "unit_price": False}]}),
    ("chat", CHAT | {"rating": "5"}),
])
def test_numbers_must_be_json_numbers(topic: str, body: dict) -> None:
    value = orjson.dumps(body)
    assert reason(topic, value) == "invalid_field"
    both_refuse(topic, value)


def test_a_float_field_takes_a_json_integer_on_both_paths() -> None:
    value = orjson.dumps(CART | {"price": 12})
    assert validate("clickstream", value, b"c1", Limits(), NOW).price == 12.0
    fast, model = paths.fast("clickstream", value), paths.contract("clickstream", value)
    assert fast is not None and model is not None
    paths.same(fast, model)


@pytest.mark.parametrize("time", ["1714557600", 1714557600, 1714557600.5])
def test_event_time_must_be_iso_8601(time: object) -> None:
    value = orjson.dumps(CART | {"event_time": time})
    assert reason("clickstream", value) == "invalid_timestamp"
    both_refuse("clickstream", value)


@pytest.mark.parametrize(("topic", "value", "key"), [
    ("clickstream", b'{"event_id":"e1","customer_id":"c1","event_time":"2024-05-01T10:00:00Z","type":"add_to_cart",'
                    b'"product_id":"p1","quantity":2,"quantity":5}', "quantity"),
    ("orders", b'{"event_id":"e2","customer_id":"c1","event_time":"2024-05-01T10:00:00Z","type":"order_paid",'
               b'"order_id":"o1","amount":1.0, "amount" :900.0}', "amount"),
    ("orders", b'{"event_id":"e2","customer_id":"c1","event_time":"2024-05-01T10:00:00Z","type":"order_placed",'
               b'"order_id":"o1","items":[{"product_id":"p","quantity":1},{"product_id":"q","quantity":1,'
               b'"quantity":9}]}', "quantity"),
    ("chat", b'{"event_id":"e4","customer_id":"c1","customer_id":"c1","event_time":"2024-05-01T10:00:00Z",'
             b'"type":"chat_message","conversation_id":"k","sender_role":"customer","channel":"email","text":"x"}',
     "customer_id"),
    ("clickstream", b'{"event_id":"e1","customer_id":"c1","event_time":"2024-05-01T10:00:00Z","type":"add_to_cart",'
                    b'"product_id":"p1","quantity":2,"quantit\\u0079":5}', "quantity"),
])
def test_duplicate_keys_are_dead_letters(topic: str, value: bytes, key: str) -> None:
    with pytest.raises(Rejected) as refused:
        validate(topic, value, b"c1", Limits(), NOW)
    assert refused.value.reason == "duplicate_key" and refused.value.detail.startswith(key)
    both_refuse(topic, value)


def test_repeated_item_keys_in_different_items_are_not_duplicates() -> None:
    items = [{"product_id": "p", "quantity": 1}, {"product_id": "q", "quantity": 2}]
    value = orjson.dumps(ORDER | {"items": items})
    assert [i.quantity for i in validate("orders", value, b"c1", Limits(), NOW).items] == [1, 2]
    fast, model = paths.fast("orders", value), paths.contract("orders", value)
    assert fast is not None and model is not None
    paths.same(fast, model)
    # a string value that happens to be a field name is not a key either
    assert validate("clickstream", orjson.dumps(SEARCH | {"query": "quantity"}), b"c1", Limits(), NOW)


@pytest.mark.parametrize("time", ["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                                  "1979-12-31T23:59:59Z"])
def test_event_times_before_the_plausible_window_are_dead_letters(time: str) -> None:
    value = orjson.dumps(CART | {"event_time": time})
    assert reason("clickstream", value) == "event_time_out_of_range"
    # the same through the pydantic path (a string quantity makes msgspec refuse): no OverflowError
    assert reason("clickstream", orjson.dumps(CART | {"event_time": time, "price": None})) == \
        "event_time_out_of_range"


def test_the_lower_bound_is_a_setting() -> None:
    value = orjson.dumps(CART | {"event_time": "1979-06-01T00:00:00Z"})
    limits = Limits(min_event_time=datetime(1975, 1, 1, tzinfo=UTC))
    assert validate("clickstream", value, b"c1", limits, NOW).event_time.year == 1979
    assert validate("clickstream", orjson.dumps(CART | {"event_time": "1980-01-01T00:00:00Z"}), b"c1",
                    Limits(), NOW).event_time == datetime(1980, 1, 1, tzinfo=UTC)
    # a real purchase history of the 1990s (dates like 19970101) is kept by default
    assert validate("clickstream", orjson.dumps(CART | {"event_time": "1997-01-01T00:00:00Z"}), b"c1",
                    Limits(), NOW).event_time.year == 1997


def test_the_settings_carry_both_ends_of_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import Settings

    monkeypatch.setenv("JOURNEY_MIN_EVENT_TIME", "2010-01-01T00:00:00Z")
    monkeypatch.setenv("JOURNEY_MAX_FUTURE_SKEW_SECONDS", "86400")
    limits = Settings().limits
    assert limits.min_event_time == datetime(2010, 1, 1, tzinfo=UTC)
    assert limits.max_future == timedelta(days=1)


def test_year_9999_with_a_negative_offset_is_refused_not_a_crash() -> None:
    """Converting it to UTC overflows datetime: on the pydantic path that used to raise OverflowError."""
    value = orjson.dumps(CART | {"event_time": "9999-12-31T23:00:00-05:00", "price": "x"})
    assert reason("clickstream", value, limits=Limits(max_future=timedelta(days=10**6))) in (
        "event_time_out_of_range", "invalid_field")
    value = orjson.dumps(CART | {"event_time": "9999-12-31T23:00:00-05:00"})
    assert reason("clickstream", value, limits=Limits(max_future=timedelta(days=10**6))) == "future_timestamp"


def test_a_huge_future_skew_setting_caps_instead_of_overflowing() -> None:
    value = orjson.dumps(CART | {"event_time": "9999-12-31T23:00:00Z"})
    assert validate("clickstream", value, b"c1", Limits(max_future=timedelta(days=3_000_000)), NOW).event_time.year \
        == 9999


def test_a_deeply_nested_object_is_malformed_not_a_crash() -> None:
    """msgspec raised RecursionError on it (not a msgspec error), which escaped validate()."""
    bomb = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert reason("clickstream", bomb) == "malformed_json"
    assert reason("clickstream", b"[" * 30_000 + b"]" * 30_000) == "malformed_json"
    both_refuse("clickstream", bomb)


@pytest.mark.parametrize(("topic", "body"), [
    ("clickstream", SEARCH | {"results": 2**32}),  # stored in a UInt32 column: the insert would fail
    ("clickstream", SEARCH | {"results": 10**18}),
    ("clickstream", {**SEARCH, "type": "checkout_started", "items": 2**40, "query": None}),
    ("clickstream", CART | {"quantity": -1}),
    ("orders", ORDER | {"amount": -5.0}),
])
def test_counts_and_amounts_are_bounded(topic: str, body: dict) -> None:
    value = orjson.dumps({k: v for k, v in body.items() if v is not None})
    assert reason(topic, value) == "invalid_field"
    both_refuse(topic, value)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_amounts_are_refused(token: bytes) -> None:
    value = orjson.dumps(ORDER).replace(b'"amount":19.0', b'"amount":' + token)
    assert token in value
    assert reason("orders", value) == "invalid_field"
    both_refuse("orders", value)


@pytest.mark.parametrize("ident", ["p\x1b[31m1", "p\x001", "p\x7f1", "p\x851", "p\r1"])
def test_identifiers_refuse_control_characters(ident: str) -> None:
    value = orjson.dumps(CART | {"product_id": ident})
    assert reason("clickstream", value) == "invalid_field"
    both_refuse("clickstream", value)


def test_invalid_utf8_and_lone_surrogates_are_malformed() -> None:
    assert reason("clickstream", orjson.dumps(CART).replace(b'"p1"', b'"p\xff1"')) == "malformed_json"
    assert reason("clickstream", orjson.dumps(CART).replace(b'"p1"', b'"p\\ud8001"')) == "malformed_json"


def test_a_record_key_that_is_not_the_customer_is_refused() -> None:
    assert reason("clickstream", orjson.dumps(CART), key=b"c2") == "key_mismatch"
    assert reason("clickstream", orjson.dumps(CART), key=b"\xff") == "key_mismatch"


@pytest.mark.parametrize(("topic", "body"), [
    ("chat", CHAT | {"text": "hi \x1b[2J\x1b[31mred"}),
    ("chat", CHAT | {"text": "nul\x00byte"}),
    ("chat", CHAT | {"text": "c1 control \x9b"}),
    ("clickstream", SEARCH | {"query": "shoes\x07"}),
    ("clickstream", CART | {"utm_campaign": "spring\x1b]0;title\x07"}),
    ("clickstream", CART | {"brand": "acme\x7f"}),
    ("clickstream", CART | {"page_url": "https://shop.example/\x1b[1m"}),
    ("orders", {**ORDER, "type": "order_cancelled", "items": None, "reason": "late\x08"}),
])
def test_text_refuses_control_characters(topic: str, body: dict) -> None:
    value = orjson.dumps({k: v for k, v in body.items() if v is not None})
    assert reason(topic, value) == "invalid_field"
    both_refuse(topic, value)


def test_text_keeps_tabs_line_breaks_and_other_scripts_on_the_fast_path() -> None:
    text = "Olá!\r\nLinha 2\tcom tab — 谢谢 \u00a0 🎉"
    value = orjson.dumps(CHAT | {"text": text})
    assert validate("chat", value, b"c1", Limits(), NOW).text == text
    fast, model = paths.fast("chat", value), paths.contract("chat", value)
    assert fast is not None and model is not None
    paths.same(fast, model)
