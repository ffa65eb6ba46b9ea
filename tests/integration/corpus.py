"""The adversarial corpus: one entry per kind of bad or hostile input record, with its expected outcome.

Each :class:`Case` is one record (topic, key bytes, value bytes) and what the pipeline must do
with it: store it once (``STORED``), skip it as a redelivery of an event already stored
(``DUPLICATE``), store it and set it aside as late (``LATE``), or turn it into a dead letter
with a reason (``DEAD``; ``DEAD_AGAIN`` for the same bad bytes a second time: still one
dead letter). tests/integration/test_adversarial.py produces the corpus interleaved with
real good records and checks every outcome against a running sink and features worker.

Bad records on the output topics the sink stores (profiles, late events) are in it too: anyone
with access can write to a topic.

Bad records are addressed to a real customer of the good data (:data:`VICTIM`), so any bad
record that leaked into a profile would show in the comparison with the batch computation.
Records the pipeline must accept go to customers of their own (``adv-...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.sources.edge import clean_body

STORED, DUPLICATE, LATE, DEAD, DEAD_AGAIN = "stored", "duplicate", "late", "dead_letter", "dead_letter_again"

#: Reason codes (schemas/validation.py; the ones the contract fixes introduce are named here once).
MALFORMED, NOT_OBJECT, EMPTY, OVERSIZED = "malformed_json", "not_an_object", "empty_value", "oversized"
MISSING_FIELD, MISSING_ID, INVALID, UNKNOWN_FIELD = "missing_field", "missing_id", "invalid_field", "unknown_field"
#: An event naming no one: neither customer_id nor anonymous_id (schemas/base.py).
MISSING_IDENTITY = "missing_identity"
UNKNOWN_TYPE, WRONG_TOPIC, SCHEMA_VERSION = "unknown_event_type", "wrong_topic", "unsupported_schema_version"
BAD_TIME, FUTURE, KEY_MISMATCH = "invalid_timestamp", "future_timestamp", "key_mismatch"
CLEAR_IDENTIFIER = "clear_identifier"
DUPLICATE_KEY = "duplicate_key"  # a JSON object naming a field twice (which one would win is the parser's whim)
CONFLICT = "conflicting_duplicate"  # an event id already taken by a different event
OUT_OF_RANGE = "event_time_out_of_range"  # before 1980-01-01 (1970, year 1: a zero default upstream), or no UTC instant
MISSING_KEY = "missing_key"  # a keyless record cannot be placed on its customer's partition

#: A customer of the good data (the Taobao sample's first user): bad records pretend to be theirs.
VICTIM = "1"
#: Event time of the corpus records the pipeline accepts: inside the good data's time range.
T0 = datetime(2017, 11, 28, 12, 0, tzinfo=UTC)

#: A Brazilian CPF and an international phone number written the way people type them in chat.
CPF, PHONE = "123.456.789-09", "00447900248601"


@dataclass(frozen=True)
class Case:
    """One hostile record and what must become of it."""

    name: str
    topic: str
    key: bytes | None
    value: bytes | None
    outcome: str
    reason: str | None = None

    @property
    def event(self) -> dict[str, Any]:
        """The record's JSON body (only for cases the pipeline accepts)."""
        assert self.value is not None
        body = orjson.loads(self.value)
        assert isinstance(body, dict)
        return body


def at(offset: timedelta = timedelta(0)) -> str:
    return (T0 + offset).isoformat().replace("+00:00", "Z")


def click(event_id: str, customer: str = VICTIM, type_: str = "page_view", **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "event_time": at(), "type": type_, **fields}


def order(event_id: str, customer: str = VICTIM, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "event_time": at(), "type": "order_placed",
            "order_id": f"o-{event_id}", "currency": "BRL", "amount": 10.0,
            "items": [{"product_id": "p-1", "quantity": 1, "unit_price": 10.0}], **fields}


def chat(event_id: str, customer: str = VICTIM, text: str = "hello", **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "event_time": at(), "type": "chat_message",
            "conversation_id": f"conv-{customer}", "sender_role": "customer", "channel": "live_chat",
            "text": text, **fields}


def consent(event_id: str, customer: str = VICTIM, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "event_time": at(), "type": "consent_changed",
            "channel": "email", "status": "granted", **fields}


def dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != name}


def _bad(name: str, topic: str, value: bytes | None, reason: str, key: bytes | None = VICTIM.encode()) -> Case:
    return Case(name, topic, key, value, DEAD, reason)


def _good(name: str, topic: str, body: dict[str, Any], outcome: str = STORED) -> Case:
    return Case(name, topic, body["customer_id"].encode(), dumps(body), outcome)


def _json_replace(body: dict[str, Any], name: str, raw: bytes) -> bytes:
    """``body`` as JSON with field ``name`` written as the raw JSON text ``raw`` (NaN, huge numbers...)."""
    return dumps({**body, name: "@@"}).replace(b'"@@"', raw)


def _malformed() -> list[Case]:
    page = dumps(click("m-base"))
    return [
        _bad("not_json", "clickstream", b"hello, world", MALFORMED),
        _bad("truncated_json", "clickstream", page[: len(page) // 2], MALFORMED),
        _bad("trailing_garbage", "clickstream", page + b" xyz", MALFORMED),
        _bad("single_quotes", "clickstream", page.replace(b'"', b"'"), MALFORMED),
        _bad("json_with_comment", "clickstream", b"/* hi */" + page, MALFORMED),
        _bad("whitespace_only", "clickstream", b"   \n\t", MALFORMED),
        # (its own key: an empty value and a tombstone under one key are the same bad record, one dead letter)
        _bad("empty_value", "clickstream", b"", EMPTY, key=b"adv-empty"),
        _bad("tombstone_clickstream", "clickstream", None, EMPTY),
        _bad("tombstone_orders", "orders", None, EMPTY),
        _bad("tombstone_chat", "chat", None, EMPTY),
        _bad("top_level_array", "clickstream", b"[" + page + b"]", NOT_OBJECT),
        _bad("top_level_number", "orders", b"42", NOT_OBJECT),
        _bad("top_level_string", "chat", b'"hello"', NOT_OBJECT),
        _bad("top_level_null", "clickstream", b"null", NOT_OBJECT),
        _bad("top_level_true", "orders", b"true", NOT_OBJECT),
        _bad("invalid_utf8", "clickstream", page.replace(b"m-base", b"m-\xff\xfebase"), MALFORMED),
        _bad("utf16_with_bom", "clickstream", page.decode().encode("utf-16"), MALFORMED),
        _bad("utf8_bom", "clickstream", b"\xef\xbb\xbf" + dumps(click("m-bom")), MALFORMED),
        _bad("raw_nul_bytes", "clickstream", page.replace(b"m-base", b"m-\x00base"), MALFORMED),
        _bad("lone_surrogate_escape", "chat", dumps(chat("m-sur", text="@@")).replace(b'"@@"', b'"\\ud800"'),
             MALFORMED),
        _bad("deep_nesting_top", "clickstream", b"[" * 10_000 + b"]" * 10_000, MALFORMED),
        _bad("deep_nesting_field", "clickstream", _json_replace(click("m-deep"), "x", b"[" * 10_000 + b"]" * 10_000),
             MALFORMED),
        _bad("oversized_1mb", "clickstream", dumps(click("m-1mb", page_url="x" * 1_000_000)), OVERSIZED),
        _bad("oversized_5mb", "chat", dumps(chat("m-5mb", text="y" * 5_000_000)), OVERSIZED),
        _bad("customer_id_10mb", "clickstream", dumps(click("m-10mb", customer="c" * 10_000_000)), OVERSIZED,
             key=b"c" * 10_000_000),
    ]


def _missing_fields() -> list[Case]:
    cases = [_bad(f"missing_{field}_clickstream", "clickstream", dumps(without(click(f"mf-c-{field}"), field)), reason)
             for field, reason in (("event_id", MISSING_ID), ("customer_id", MISSING_IDENTITY),
                                   ("event_time", MISSING_FIELD), ("type", MISSING_FIELD))]
    cases += [
        _bad("missing_product_id", "clickstream", dumps(click("mf-pid", type_="product_view")), MISSING_ID),
        _bad("missing_query", "clickstream", dumps(click("mf-q", type_="search")), MISSING_FIELD),
        _bad("missing_order_id", "orders", dumps(without(order("mf-oid"), "order_id")), MISSING_ID),
        _bad("missing_item_product_id", "orders", dumps(order("mf-ipid", items=[{"quantity": 1}])), MISSING_ID),
    ]
    cases += [_bad(f"missing_{field}_chat", "chat", dumps(without(chat(f"mf-ch-{field}"), field)), reason)
              for field, reason in (("conversation_id", MISSING_ID), ("sender_role", MISSING_FIELD),
                                    ("channel", MISSING_FIELD), ("text", MISSING_FIELD))]
    cases.append(_bad("missing_status_consent", "consent", dumps(without(consent("mf-st"), "status")), MISSING_FIELD))
    return cases


def _wrong_types() -> list[Case]:
    item = {"product_id": "p-1", "quantity": 1, "unit_price": 10.0}
    return [
        _bad("amount_as_string", "orders", dumps(order("wt-amt-s", amount="12.5")), INVALID),
        _bad("amount_true", "orders", dumps(order("wt-amt-b", amount=True)), INVALID),
        _bad("amount_negative", "orders", dumps(order("wt-amt-n", amount=-12.5)), INVALID),
        _bad("amount_nan", "orders", _json_replace(order("wt-amt-nan"), "amount", b"NaN"), INVALID),
        _bad("amount_infinity", "orders", _json_replace(order("wt-amt-inf"), "amount", b"Infinity"), INVALID),
        _bad("amount_huge_integer", "orders", _json_replace(order("wt-amt-huge"), "amount", b"9" * 400), INVALID),
        _bad("quantity_as_string", "orders", dumps(order("wt-q-s", items=[{**item, "quantity": "3"}])), INVALID),
        _bad("quantity_fraction", "orders", dumps(order("wt-q-f", items=[{**item, "quantity": 2.5}])), INVALID),
        _bad("quantity_negative", "orders", dumps(order("wt-q-n", items=[{**item, "quantity": -3}])), INVALID),
        _bad("quantity_zero_cart", "clickstream",
             dumps(click("wt-q-0", type_="add_to_cart", product_id="p-1", quantity=0)), INVALID),
        _bad("results_huge_integer", "clickstream",
             _json_replace(click("wt-res", type_="search", query="shoes"), "results", b"9" * 400), INVALID),
        _bad("checkout_items_huge", "clickstream",
             _json_replace(click("wt-items", type_="checkout_started"), "items", b"18446744073709551616"), INVALID),
        _bad("price_above_bound", "clickstream",
             dumps(click("wt-price", type_="product_view", product_id="p-1", price=1e12)), INVALID),
        _bad("customer_id_number", "clickstream", dumps(click("wt-cid", customer=12345)), INVALID, key=b"12345"),
        _bad("items_not_a_list", "orders", dumps(order("wt-items-obj", items=item)), INVALID),
        _bad("rating_out_of_range", "chat", dumps(chat("wt-rating", rating=6)), INVALID),
        _bad("rating_as_string", "chat", dumps(chat("wt-rating-s", rating="5")), INVALID),
        _bad("sender_role_unknown", "chat", dumps(chat("wt-role", sender_role="robot")), INVALID),
        _bad("currency_lower_case", "orders", dumps(order("wt-cur", currency="brl")), INVALID),
        _bad("schema_version_as_string", "clickstream", dumps(click("wt-sv", schema_version="1")), INVALID),
        _bad("schema_version_future", "consent", dumps(consent("wt-sv9", schema_version=9)), SCHEMA_VERSION),
        _bad("text_too_long", "chat", dumps(chat("wt-long", text="z" * 10_001)), INVALID),
        _bad("customer_id_too_long", "clickstream", dumps(click("wt-cid-long", customer="c" * 129)), INVALID,
             key=b"c" * 129),
        _bad("customer_id_empty", "clickstream", dumps(click("wt-cid-empty", customer="")), MISSING_ID, key=b""),
        _bad("customer_id_padded", "clickstream", dumps(click("wt-cid-pad", customer=" 1 ")), INVALID, key=b" 1 "),
        _bad("customer_id_control_chars", "clickstream", dumps(click("wt-cid-ctl", customer="1\x1b[31m")), INVALID,
             key=b"1\x1b[31m"),
        _bad("event_id_with_nul", "clickstream", dumps(click("wt-eid\x00nul")), INVALID),
    ]


def _structure() -> list[Case]:
    return [
        _bad("duplicate_json_keys", "orders",
             dumps(order("st-dupkey", amount=1.0)).replace(b'"amount":1.0', b'"amount":1.0,"amount":1000.0'),
             DUPLICATE_KEY),
        _bad("unknown_field", "clickstream", dumps(click("st-extra", nickname="x")), UNKNOWN_FIELD),
        _bad("unknown_nested_field", "orders",
             dumps(order("st-extra-item", items=[{"product_id": "p-1", "quantity": 1, "colour": "red"}])),
             UNKNOWN_FIELD),
        _bad("unknown_event_type", "clickstream", dumps(click("st-type", type_="teleport")), UNKNOWN_TYPE),
        _bad("event_type_wrong_case", "clickstream", dumps(click("st-case", type_="PAGE_VIEW")), UNKNOWN_TYPE),
        _bad("event_type_homoglyph", "clickstream", dumps(click("st-glyph", type_="page_v\u0456ew")), UNKNOWN_TYPE),
        _bad("event_type_not_a_string", "clickstream", dumps(click("st-type-int", type_=5)), UNKNOWN_TYPE),  # type: ignore[arg-type]
        _bad("order_on_clickstream", "clickstream", dumps(order("st-wrong")), WRONG_TOPIC),
        _bad("chat_on_orders", "orders", dumps(chat("st-wrong-chat")), WRONG_TOPIC),
        _bad("many_unknown_fields", "clickstream", dumps({**click("st-many"), **{f"f{i}": i for i in range(3000)}}),
             UNKNOWN_FIELD),
        _bad("too_many_items", "orders", dumps(order("st-items", items=[{"product_id": "p"}] * 1001)), INVALID),
        _bad("consent_channel_unknown", "consent", dumps(consent("st-carrier-pigeon", channel="pigeon")), INVALID),
    ]


def _outputs() -> list[Case]:
    """Anyone can write to a topic: bad records on the topics the sink stores from our processors."""
    profile = {"customer_id": "adv-forged", "as_of": at(), "events_total": 1, "features": {}}
    return [
        _bad("garbage_on_customer_features", "customer-features", b"\x00\x01 not json", MALFORMED,
             key=b"adv-forged"),
        _bad("profile_missing_as_of", "customer-features", dumps(without(profile, "as_of")), MISSING_FIELD,
             key=b"adv-forged"),
        _bad("profile_negative_events_total", "customer-features", dumps({**profile, "events_total": -1}), INVALID,
             key=b"adv-forged"),
        _bad("array_on_late_events", "late-events", b"[]", NOT_OBJECT, key=b"adv-forged"),
    ]


def _far_future() -> str:
    """Ten years ahead, in whole seconds (a fraction is digits a redaction could mistake for a phone)."""
    return (datetime.now(UTC) + timedelta(days=3650)).replace(microsecond=0).isoformat()


def _times() -> list[Case]:
    return [
        _bad("time_1970", "clickstream", dumps({**click("tm-1970"), "event_time": "1970-01-01T00:00:00Z"}),
             OUT_OF_RANGE),
        _bad("time_year_1", "clickstream", dumps({**click("tm-y1"), "event_time": "0001-01-01T00:00:00Z"}),
             OUT_OF_RANGE),
        _bad("time_year_1_offset", "orders", dumps({**order("tm-y1o"), "event_time": "0001-01-01T00:00:00+05:00"}),
             OUT_OF_RANGE),
        _bad("time_year_9999", "clickstream", dumps({**click("tm-9999"), "event_time": "9999-12-31T23:59:59Z"}),
             FUTURE),
        _bad("time_year_9999_offset", "clickstream",
             dumps({**click("tm-9999o"), "event_time": "9999-12-31T23:59:59-05:00"}), FUTURE),
        _bad("time_far_future", "chat",
             dumps({**chat("tm-future"), "event_time": _far_future()}), FUTURE),
        # Seconds 00 and a fraction: the kept original must not be "redacted" as if it held a phone number.
        _bad("time_fraction_not_a_phone", "clickstream",
             dumps({**click("tm-frac", type_="teleport"), "event_time": "2017-11-28T22:03:00.161166+00:00"}),
             UNKNOWN_TYPE),
        _bad("time_unparseable", "clickstream", dumps({**click("tm-bad"), "event_time": "yesterday at noon"}),
             BAD_TIME),
        _bad("time_naive", "clickstream", dumps({**click("tm-naive"), "event_time": "2017-11-28T12:00:00"}), BAD_TIME),
        _bad("time_as_number", "clickstream", dumps({**click("tm-num"), "event_time": 1511870400}), BAD_TIME),
        _bad("time_as_numeric_string", "clickstream", dumps({**click("tm-numstr"), "event_time": "1511870400"}),
             BAD_TIME),
    ]


def _keys() -> list[Case]:
    return [
        _bad("key_disagrees_with_body", "clickstream", dumps(click("k-mismatch")), KEY_MISMATCH, key=b"someone-else"),
        _bad("key_with_trailing_space", "clickstream", dumps(click("k-space")), KEY_MISMATCH, key=b"1 "),
        _bad("keyless", "clickstream", dumps(click("k-none", customer="adv-keyless")), MISSING_KEY, key=None),
        _bad("key_10mb", "clickstream", dumps(click("k-10mb")), KEY_MISMATCH, key=b"k" * 10_000_000),
    ]


def _terminal_escapes() -> list[Case]:
    """Control characters in free text (terminal escapes that would reach a CLI or a dashboard): refused."""
    texts = {
        "text_ansi_escapes": "\x1b[31mred\x1b[0m \x1b[2J\x1b[H cleared",
        "text_osc8_link": "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
        "text_control_chars": "bell\x07 backspace\x08 nul\x00 del\x7f c1\x9b end",
    }
    cases = [_bad(name, "chat", dumps(chat(f"esc-{name}", text=text)), INVALID) for name, text in texts.items()]
    cases.append(_bad("search_query_ansi", "clickstream",
                      dumps(click("esc-query", type_="search", query="\x1b[5mblink")), INVALID))
    return cases


def _privacy() -> list[Case]:
    return [
        _bad("chat_with_cpf_and_phone", "chat",
             dumps(chat("pv-cpf", text=f"meu CPF é {CPF}, liga no {PHONE} por favor")), CLEAR_IDENTIFIER),
        _bad("chat_with_phone_no_cue", "chat", dumps(chat("pv-phone", text=f"{PHONE} anytime")), CLEAR_IDENTIFIER),
        _bad("chat_with_email", "chat", dumps(chat("pv-mail", text="write to ana.silva@example.com")),
             CLEAR_IDENTIFIER),
        _bad("search_with_ip", "clickstream", dumps(click("pv-ip", type_="search", query="my ip is 192.168.10.20")),
             CLEAR_IDENTIFIER),
        _bad("customer_id_is_email", "clickstream", dumps(click("pv-cid", customer="ana@example.com")),
             CLEAR_IDENTIFIER, key=b"ana@example.com"),
    ]


def _accepted() -> list[Case]:
    """Hostile-looking but valid records: stored exactly, byte for byte, once."""
    texts = {
        "text_rich_markup": "[bold red]alert[/bold red] [/oops] [link=https://x.example]x[/link]",
        "text_tabs_and_line_breaks": "line one\n\tline two\r\nline three",
        "text_sql_injection": "'); DROP TABLE chat_messages; -- \" OR 1=1 /* */ UNION SELECT * FROM system.users",
        "text_format_strings": "%s%s%s%n {0} {customer_id} ${jndi:ldap://x.example/a} {{7*7}}",
        "text_unicode_mix": "RTL \u202egnp.exe\u202c emoji \U0001f600 zero\u200bwidth e\u0301 \ufeffbom",
        "text_max_length": "w" * 10_000,
    }
    cases = [_good(name, "chat", chat(f"ok-{name}", customer=f"adv-{name}", text=text))
             for name, text in texts.items()]
    sql = click("ok-sql-search", customer="adv-sql", type_="search", query="1' OR '1'='1'; --",
                page_url="https://shop.example/?q=%27%20OR%201%3D1", referrer="javascript:alert(1)")
    cases += [
        _good("search_sql_injection", "clickstream", sql),
        _good("event_time_with_offset", "clickstream",
              {**click("ok-offset", customer="adv-offset"), "event_time": "2017-11-28T17:30:00+05:30"}),
        _good("order_on_orders", "orders", order("ok-order", customer="adv-orders", amount=25.5)),
        _good("consent_on_consent", "consent", consent("ok-consent", customer="adv-consent")),
        # The same chat as the refused one, sent through the edge (what every source applies): redacted, stored.
        _good("chat_cleaned_at_edge", "chat",
              clean_body(chat("ok-edge", customer="adv-edge", text=f"meu CPF é {CPF}, liga no {PHONE} por favor"))),
        _good("customer_id_unicode", "clickstream", click("ok-unicode", customer="adv-\u00e7\u00e3o-\u5ba2\u6237")),
        Case("whitespace_padded", "clickstream", b"adv-padded",
             b" " * 30_000 + dumps(click("ok-padded", customer="adv-padded")) + b"\n" * 30_000, STORED),
        Case("customer_id_json_escaped", "clickstream", b"adv-esc",
             dumps(click("ok-escaped", customer="adv-esc")).replace(b'"adv-esc"', b'"adv-\\u0065sc"'), STORED),
        Case("amount_exponent", "orders", b"adv-numbers",
             _json_replace(order("ok-exponent", customer="adv-numbers"), "amount", b"1E2"), STORED),
    ]
    # The same event twice, byte for byte: stored once. The same id with other content: refused.
    first = order("ok-dup", customer="adv-dup", amount=40.0)
    cases += [
        _good("duplicate_original", "orders", first),
        _good("duplicate_identical", "orders", first, DUPLICATE),
        Case("duplicate_conflicting", "orders", b"adv-dup", dumps({**first, "amount": 4000.0}), DEAD, CONFLICT),
    ]
    # A late event: three hours older than the customer's newest (allowed lateness: 1 h).
    newest = {**click("ok-late-newest", customer="adv-late"), "event_time": at(timedelta(hours=3))}
    late = {**click("ok-late-old", customer="adv-late"), "event_time": at(timedelta(minutes=10))}
    cases += [_good("late_newest", "clickstream", newest), _good("late_event", "clickstream", late, LATE)]
    # The same bad record twice: one dead letter.
    repeated = b'{"event_id": "again", "customer_id": '
    cases += [_bad("bad_record_first", "clickstream", repeated, MALFORMED),
              Case("bad_record_repeated", "clickstream", VICTIM.encode(), repeated, DEAD_AGAIN, MALFORMED)]
    return cases


def corpus() -> list[Case]:
    """Every kind, in the order they are produced (a duplicate after its original)."""
    cases = [*_malformed(), *_missing_fields(), *_wrong_types(), *_structure(), *_times(), *_keys(),
             *_terminal_escapes(), *_privacy(), *_outputs(), *_accepted()]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "one entry per kind"
    return cases
