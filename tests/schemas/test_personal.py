"""Personal-field marks in the contracts, detection and redaction of clear identifiers, and the refusal."""

from __future__ import annotations

import base64
import re

import orjson
import pytest

from schemas.personal import EMAIL, holds_identifier, is_direct_identifier, personal_fields, redact
from schemas.registry import json_schema
from schemas.validation import Limits, Rejected, dead_letter, validate

CHAT = {"event_id": "e1", "customer_id": "c1", "event_time": "2024-05-01T10:00:00Z", "type": "chat_message",
        "conversation_id": "k", "sender_role": "customer", "channel": "email", "text": "hello"}


def test_the_exported_json_schema_marks_personal_fields() -> None:
    identifiers = ("customer_id", "anonymous_id", "device_id", "email_hash", "phone_hash", "chat_handle", "loyalty_id",
                   "resolved_from")
    assert personal_fields(json_schema("chat")) == {**dict.fromkeys(identifiers, "pseudonymous"), "text": "free_text"}
    marked = personal_fields(json_schema("clickstream"))
    assert marked["query"] == marked["page_url"] == marked["referrer"] == "free_text"
    assert marked["session_id"] == "pseudonymous"
    assert personal_fields(json_schema("consent"))["source"] == "free_text"


@pytest.mark.parametrize(("text", "kind"), [
    ("write to jaksonrocha21@hotmail.com please", "email"), ("DM me +49 1708733216", "phone"),
    ("+1(818)930-5703", "phone"), ("call 850.266.3576", "phone"), ("(11) 98765-4321", "phone"),
    ("my number: 08070635658", "phone"), ("from 192.168.10.20", "ip"),
])
def test_direct_identifiers_in_text_are_found_and_redacted(text: str, kind: str) -> None:
    assert holds_identifier(text) == kind
    cleaned = redact(text)
    assert f"[{kind}]" in cleaned and holds_identifier(cleaned) is None


@pytest.mark.parametrize("text", ["order 111-5014070-4118645", "version 1.0.65.320", "2017-11-25 10:00",
                                  "R$ 129.90 em 12x", "pedido 1234567890", "1982 - 2017", "cep 35182-000"])
def test_numbers_that_are_not_phones_stay(text: str) -> None:
    assert holds_identifier(text) is None and redact(text) == text


def test_identifier_fields_must_not_be_emails_or_phones() -> None:
    assert is_direct_identifier("ana@example.com") and is_direct_identifier("+55 11 98765-4321")
    assert not is_direct_identifier("c-42") and not is_direct_identifier("115712")


def test_clear_identifiers_are_refused_and_the_dead_letter_is_redacted() -> None:
    value = orjson.dumps({**CHAT, "text": "I am ana@example.com, +44 20 7946 0958"})
    with pytest.raises(Rejected) as refused:
        validate("chat", value, b"c1", Limits())
    assert refused.value.reason == "clear_identifier" and "example" not in refused.value.detail
    value = orjson.dumps({**CHAT, "customer_id": "ana@example.com"})
    with pytest.raises(Rejected) as refused:
        validate("chat", value, b"ana@example.com", Limits())
    assert refused.value.reason == "clear_identifier"
    letter = dead_letter("chat", 0, 1, b"ana@example.com", value, refused.value.reason, refused.value.detail)
    assert b"ana@example.com" not in base64.b64decode(letter.original)
    assert base64.b64decode(letter.key or "") == b"[identifier]"
    assert validate("chat", orjson.dumps(CHAT), b"c1", Limits()).text == "hello"


def test_an_email_match_starts_only_where_its_run_of_characters_starts() -> None:
    """What keeps the search linear in the text's length (dead letters redact payloads of any size)."""
    text = "write to jane.doe@example.com"
    assert EMAIL.search(text).group() == "jane.doe@example.com"  # type: ignore[union-attr]
    start = text.index("jane")
    assert EMAIL.match(text, start) is not None
    assert all(EMAIL.match(text, i) is None for i in range(start + 1, text.index("@")))


@pytest.mark.parametrize(("text", "kind", "cleaned"), [
    ("meu cpf é 123.456.789-09, obrigado", "cpf", "meu cpf é [cpf], obrigado"),
    ("cpf 12345678909", "cpf", "cpf [cpf]"),
    ("cpf 123456789-09.", "cpf", "cpf [cpf]."),
    ("empresa 11.222.333/0001-81", "cnpj", "empresa [cnpj]"),
    ("cnpj 11222333000181", "cnpj", "cnpj [cnpj]"),
    ("call me on 00447900248601", "phone", "call me on [phone]"),
    ("00447900248601", "phone", "[phone]"),
    ("ring 0044 7900 248601 now", "phone", "ring [phone] now"),
    ("ring 00 44 7900 248601", "phone", "ring [phone]"),
    ("ring 0044-7900-248-601", "phone", "ring [phone]"),
    ("ring +44 (0) 7900 248601", "phone", "ring [phone]"),
    ("ring (+44) 7900 248601", "phone", "ring [phone]"),
    ("whatsapp +55 (11) 98765-4321", "phone", "whatsapp [phone]"),
    ("card 4111 1111 1111 1111 ok", "card", "card [card] ok"),
    ("card 4111-1111-1111-1111", "card", "card [card]"),
    ("amex 3782 822463 10005", "card", "amex [card]"),
    ("cartão 4111111111111111", "card", "cartão [card]"),
])
def test_taxpayer_numbers_and_international_phones_are_redacted(text: str, kind: str, cleaned: str) -> None:
    assert holds_identifier(text) == kind
    assert redact(text) == cleaned
    assert holds_identifier(redact(text)) is None


@pytest.mark.parametrize("text", [
    "cpf 12345678900",  # 11 digits whose check digits do not hold: not a CPF
    "id 00000000000", "tracking 11111111111", "cnpj 11222333000180",
    "tweet 1234567890123456789", "ts 1714557600", "order 0012345", "R$ 1.234.567,89", "total 12345.67",
    "2017-11-25 10:00:00", "2024-05-01T10:00:00Z", "pedido 8a3f0c2e9d4b", "nota 5 de 5", "v2.10.345-1",
    "order 12345678901234567", "ref 4111111111111112",  # 17 digits; 16 failing the Luhn check
])
def test_numbers_that_are_not_taxpayer_numbers_or_phones_stay(text: str) -> None:
    assert holds_identifier(text) is None and redact(text) == text


def test_punctuated_taxpayer_numbers_are_not_ids() -> None:
    assert is_direct_identifier("123.456.789-09") and is_direct_identifier("11.222.333/0001-81")
    assert not is_direct_identifier("12345678909")  # a shop's numeric customer id looks the same


def test_a_cpf_in_chat_text_is_refused_on_the_topic() -> None:
    with pytest.raises(Rejected) as refused:
        validate("chat", orjson.dumps({**CHAT, "text": "cpf 123.456.789-09"}), b"c1", Limits())
    assert refused.value.reason == "clear_identifier" and "cpf" in refused.value.detail


def test_the_readme_lists_exactly_what_is_redacted() -> None:
    """Every example of the README's redaction table becomes its token; its counter-examples stay."""
    from tests.test_readme import section, table_rows

    privacy = section("Privacy and data rights (GDPR, LGPD)")
    rows = [cells for cells in table_rows(privacy) if cells[2].startswith("`[")]
    assert len(rows) == 8
    examples = 0
    for _, written, becomes in rows:
        token = becomes.strip("`")
        for example in re.findall(r"`([^`]+)`", written):
            if example in ("+", "00"):  # the prefixes named in the text
                continue
            assert redact(example) == token, example
            examples += 1
    assert examples >= 15
    unlisted = privacy[privacy.index("Not redacted:"):privacy.index("An email, a `+` phone")]
    kept = [e for e in re.findall(r"`([^`]+)`", unlisted) if e != "00"]
    assert len(kept) == 3
    for example in kept:
        assert redact(example) == example, example


#: Times and timestamps whose seconds (00) and fraction read like a "00" international number, and longer fractions.
TIMES_WITH_FRACTIONS = [
    "22:03:00.161166", "2017-11-28T22:03:00.161166+00:00", "2017-11-28 22:03:00.161166", "at 22:03:00.161166 UTC",
    "2017-11-28T22:03:00.161166Z", "22:03:00.16116612", "22:03:59.161166123", "2017-11-28T09:15:00.4420731-03:00",
    '{"event_time": "2017-11-28T22:03:00.161166+00:00"}', "from 10:00:00.123456 to 10:05:00.654321",
]


@pytest.mark.parametrize("text", TIMES_WITH_FRACTIONS)
def test_times_with_fractional_seconds_are_not_phones(text: str) -> None:
    """``22:03:00.161166`` became ``22:03:[phone]``: "00" then 6 digits read as a "00" international number."""
    assert redact(text) == text and holds_identifier(text) is None


def test_no_time_of_day_with_microseconds_is_taken_for_a_phone() -> None:
    """Every second of a minute, with fractions of 1 to 9 digits, in a time and an ISO timestamp."""
    for second in range(60):
        for fraction in ("1", "16", "161", "1611", "16116", "161166", "1611661", "16116612", "161166123", "100000"):
            for text in (f"22:03:{second:02d}.{fraction}", f"2017-11-28T22:03:{second:02d}.{fraction}+00:00"):
                assert redact(text) == text, text


def test_phones_next_to_a_time_are_still_redacted() -> None:
    text = "at 22:03:00.161166 call 0044 7900 248601 or +44 20 7946 0958"
    assert redact(text) == "at 22:03:00.161166 call [phone] or [phone]"
    assert redact("tel:+44 20 7946 0958") == "tel:[phone]"
