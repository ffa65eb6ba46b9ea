"""Which contract fields are personal, and how clear direct identifiers are found and redacted.

Contracts mark personal fields with ``json_schema_extra`` (so the exported JSON Schema says
it): :data:`PSEUDONYMOUS` for identifiers that single out a customer without naming them
(the shop's customer id, a session id), :data:`FREE_TEXT` for text a person wrote or a URL
they visited, which may carry a direct identifier. Direct identifiers (email, phone, name,
postal address, IP address) have no field in any contract: the edge (``streams.sources.edge``)
replaces them with a keyed HMAC where a join needs them, and drops them otherwise; what is
left of them inside free text is redacted there to ``[email]``, ``[phone]``, ``[ip]``, and
Brazilian taxpayer numbers to ``[cpf]`` and ``[cnpj]``, payment card numbers to ``[card]``.

:func:`clear_identifier` is the refusal on the topics: a record whose identifier fields
look like an email, a ``+`` phone number or a punctuated CPF/CNPJ, or whose free text still holds
one of the identifiers :func:`redact` replaces, is dead-lettered as ``clear_identifier`` (with
its original bytes redacted), so a producer that skipped the edge cannot land them in ClickHouse
or on the internal topics.
"""

from __future__ import annotations

import re
from typing import Any

#: ``json_schema_extra`` of a pseudonymous identifier (kept; erasure finds rows by it).
PSEUDONYMOUS: dict[str, Any] = {"personal": True, "personal_kind": "pseudonymous"}
#: ``json_schema_extra`` of free text that may hold identifiers (redacted at the edge, checked on the topics).
FREE_TEXT: dict[str, Any] = {"personal": True, "personal_kind": "free_text"}

#: Direct identifiers a source may carry; none of them is a contract field (see streams/sources/edge.py).
DIRECT_IDENTIFIERS = ("email", "phone", "name", "first_name", "last_name", "address", "street", "ip",
                      "ip_address", "user_agent")

#: An email address. The lookbehind lets a match start only where a run of local-part characters
#: starts: without it the search retries from every character of a long run (quadratic: 200 kB
#: of letters took over a minute); with it each run is scanned once. Same matches either way.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: Phone numbers: an international number after "+" or "00" (``+44 20 7946 0958``, ``+1(818)930-5703``,
#: ``00447900248601``, ``0044 7900 248601``), or 9-15 digits in the groups people write
#: (``(11) 98765-4321``, ``850.266.3576``, ``0344 556 5650``); 8-15 digits in all. Longer digit runs
#: (order numbers such as ``111-5014070-4118645``) and plain dates are not phones. Nor is anything right after
#: a digit and a colon: the seconds and fraction of a time (``22:03:00.161166``, ``...T22:03:59.161166123``)
#: read as a ``00`` international number or a grouped one.
PHONE = re.compile(
    r"(?<![\w+.-])(?<!\d:)(?:(?:\(?\+|00[\s.-]?(?=[1-9]))\(?\d{1,3}\)?[\s.-]?(?:\(?\d{1,4}\)?[\s.-]?){1,4}\d{2,6}"
    r"|\(?\d{2,4}\)?[\s.-]\d{3,5}[\s.-]?\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-]|\.\d)")
#: A Brazilian CPF (a person's taxpayer number): ``123.456.789-09`` as written, or with the dots or the
#: dash left out, when its two check digits hold (so 99 in 100 other 11-digit numbers are left alone).
CPF = re.compile(r"(?<![\w./-])\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?![\w]|[./-]\d)")
#: A Brazilian CNPJ (a company's, or a sole trader's, taxpayer number): ``12.345.678/0001-95``, or
#: with the punctuation left out when its check digits hold.
CNPJ = re.compile(r"(?<![\w./-])\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}(?![\w]|[./-]\d)")
#: A bare run of 8-15 digits is a phone only next to a word that says so (else it may be an order number).
CUE_PHONE = re.compile(r"(?i)\b(call|phone|tel|text|whats ?app|number|mobile|cell|telefone|celular|contato|ligar|"
                       r"fone|n[uú]mero)(\D{1,12})\d{8,15}\b")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])")

#: A payment card number: 16 digits in groups of four (``4111 1111 1111 1111``, ``4111-1111-...``),
#: 15 as American Express writes them (``3782 822463 10005``), or 15-16 bare digits; only when the
#: Luhn check holds. Longer runs (tweet ids have 18-19 digits) are left alone.
CARD = re.compile(r"(?<![\w.-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}|\d{4}[ -]\d{6}[ -]\d{5}|\d{15,16})(?![\w-]|[.,]\d)")


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0 and len(set(digits)) > 1


_REDACTIONS = ((EMAIL, "[email]"), (IPV6, "[ip]"), (IPV4, "[ip]"), (PHONE, "[phone]"))
_DIGITS = re.compile(r"\d")


def _check_digit(digits: list[int], weights: range | tuple[int, ...]) -> int:
    rest = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


def _cpf(text: str) -> bool:
    """Whether a :data:`CPF` match is one: fully punctuated, or its check digits hold."""
    if "." in text and "-" in text and len(text) == 14:
        return True
    d = [int(c) for c in text if c.isdigit()]
    return len(set(d)) > 1 and d[9] == _check_digit(d[:9], range(10, 1, -1)) \
        and d[10] == _check_digit(d[:10], range(11, 1, -1))


_CNPJ_WEIGHTS = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def _cnpj(text: str) -> bool:
    """Whether a :data:`CNPJ` match is one: fully punctuated, or its check digits hold."""
    if "/" in text and "-" in text and text.count(".") == 2:
        return True
    d = [int(c) for c in text if c.isdigit()]
    return len(set(d)) > 1 and d[12] == _check_digit(d[:12], _CNPJ_WEIGHTS[1:]) \
        and d[13] == _check_digit(d[:13], _CNPJ_WEIGHTS)


#: What every card number, CPF and CNPJ contains: at least 11 digits, maybe grouped. One scan that
#: usually fails at once, so text without one pays for a single search instead of three.
_LONG_NUMBER = re.compile(r"\d[\d./ -]{9,}\d")


def _tax_ids(text: str) -> str:
    """``text`` with card numbers, CNPJs and CPFs replaced by ``[card]``, ``[cnpj]`` and ``[cpf]``."""
    if not _LONG_NUMBER.search(text):
        return text
    text = CARD.sub(lambda m: "[card]" if _luhn(m.group()) else m.group(), text)
    text = CNPJ.sub(lambda m: "[cnpj]" if _cnpj(m.group()) else m.group(), text)
    return CPF.sub(lambda m: "[cpf]" if _cpf(m.group()) else m.group(), text)


def _tax_id(text: str) -> str | None:
    """``card``, ``cnpj`` or ``cpf`` when ``text`` holds one, else None."""
    if not _LONG_NUMBER.search(text):
        return None
    if any(_luhn(m.group()) for m in CARD.finditer(text)):
        return "card"
    if any(_cnpj(m.group()) for m in CNPJ.finditer(text)):
        return "cnpj"
    return "cpf" if any(_cpf(m.group()) for m in CPF.finditer(text)) else None


def _phone(text: str) -> bool:
    match = PHONE.search(text)
    while match is not None:
        if 8 <= len(_DIGITS.findall(match.group())) <= 15:
            return True
        match = PHONE.search(text, match.end())
    return False


def redact(text: str) -> str:
    """``text`` with emails, IP addresses, card numbers, CPFs, CNPJs and phone numbers replaced by
    ``[email]``, ``[ip]``, ``[card]``, ``[cpf]``, ``[cnpj]``, ``[phone]`` (cards and taxpayer numbers before
    phones: grouped or bare, they look like phones)."""
    if not text:
        return text
    for pattern, token in _REDACTIONS[:3]:
        text = pattern.sub(token, text)
    text = _tax_ids(text)
    text = CUE_PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}[phone]", text)
    return PHONE.sub(lambda m: "[phone]" if 8 <= len(_DIGITS.findall(m.group())) <= 15 else m.group(), text)


def redact_bytes(data: bytes) -> bytes:
    """:func:`redact` over bytes (decoded as UTF-8 with replacement only when something is found)."""
    text = data.decode("utf-8", "replace")
    cleaned = redact(text)
    return data if cleaned == text else cleaned.encode()


def holds_identifier(text: str | None) -> str | None:
    """The kind of direct identifier in free ``text`` (email, ip, card, cpf, cnpj, phone), or None."""
    if not text:
        return None
    if "@" in text and EMAIL.search(text):
        return "email"
    if ("." in text and IPV4.search(text)) or (":" in text and IPV6.search(text)):
        return "ip"
    tax_id = _tax_id(text)
    if tax_id is not None:
        return tax_id
    return "phone" if _phone(text) or CUE_PHONE.search(text) else None


def is_direct_identifier(value: str | None) -> bool:
    """Whether an identifier field holds an email, a ``+`` phone number or a punctuated CPF or CNPJ instead
    of an id (bare digits stay: a shop's numeric customer ids look the same)."""
    if not value:
        return False
    return ("@" in value and EMAIL.fullmatch(value) is not None) or (
        value.startswith("+") and PHONE.fullmatch(value) is not None) or (
        "-" in value and _PUNCTUATED_TAX_ID.fullmatch(value) is not None)


_PUNCTUATED_TAX_ID = re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}|\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}")


#: Per input event type: (identifier fields, free-text fields) checked by :func:`clear_identifier`.
IDENTIFIER_FIELDS = ("customer_id", "session_id", "anonymous_id", "device_id", "email_hash", "phone_hash",
                     "chat_handle", "loyalty_id", "previous_id", "resolved_from")
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "chat_message": ("text",),
    "search": ("query", "page_url", "referrer"),
    "order_cancelled": ("reason",),
    "order_refunded": ("reason",),
    "consent_changed": ("source",),
}
_URL_FIELDS = ("page_url", "referrer")


def clear_identifier(event: Any) -> str | None:
    """Why ``event`` (a validated input event) carries a clear direct identifier, or None.

    Identifier fields must not be an email or a ``+`` phone number; free-text fields must not
    hold an email, phone or IP address; URLs must not hold an email. Names the field, never the value.
    """
    for name in IDENTIFIER_FIELDS:
        if is_direct_identifier(getattr(event, name, None)):
            return f"{name}: is a direct identifier (send its HMAC from the edge)"
    event_type = event.type
    for name in TEXT_FIELDS.get(event_type, ()):
        kind = holds_identifier(getattr(event, name, None))
        if kind is not None:
            return f"{name}: holds a clear {kind} (redact at the edge)"
    if event_type != "search":
        for name in _URL_FIELDS:
            value = getattr(event, name, None)
            if value and "@" in value and EMAIL.search(value):
                return f"{name}: holds a clear email (redact at the edge)"
    return None


def personal_fields(schema: dict[str, Any]) -> dict[str, str]:
    """``{field: personal_kind}`` of every field marked personal in a JSON Schema (and its ``$defs``)."""
    found: dict[str, str] = {}
    for model in [schema, *schema.get("$defs", {}).values()]:
        for name, spec in model.get("properties", {}).items():
            if spec.get("personal"):
                found[name] = str(spec.get("personal_kind", "personal"))
    return found
