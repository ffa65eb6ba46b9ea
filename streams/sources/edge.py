"""The edge: what every source applies before a record leaves for a topic.

Direct identifiers never travel in clear past here. Free-text fields (chat text, search
queries, URLs, cancel/refund reasons, consent sources; marked ``FREE_TEXT`` in the contracts)
have emails, phone numbers, IP addresses, payment card numbers and Brazilian CPF/CNPJ numbers
redacted to ``[email]``, ``[phone]``, ``[ip]``, ``[card]``, ``[cpf]``, ``[cnpj]`` (exactly what
``schemas.personal.redact`` finds; the README's privacy section lists the forms): nothing joins on
them, so they are dropped. An identifier field (``customer_id``, ``session_id``) that is an email,
a ``+`` phone number or a punctuated CPF/CNPJ is replaced by its keyed pseudonym (``h-<HMAC>``),
so the same person still joins across records and sources. A mapped replay may name identifier
columns (``email=Email``, ``phone=...``, ``name=...``, ``address=...``, ``ip=...``): they are read
and dropped, never sent.

Ingestion refuses what slipped through (``schemas.personal.clear_identifier``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.personal import EMAIL, IDENTIFIER_FIELDS, TEXT_FIELDS, is_direct_identifier, redact

#: A pseudonym function (``Pseudonymizer.pseudonym``); without one, clear identifiers are left for
#: ingestion to refuse (nothing a source can do without the key).
Pseudonym = Callable[[str], str]
_URL_FIELDS = ("page_url", "referrer")


def _changes(get: Callable[[str], Any], event_type: Any, pseudonym: Pseudonym | None) -> dict[str, Any]:
    """The fields of one event to replace, and their cleaned values."""
    changes: dict[str, Any] = {}
    if pseudonym is not None:
        for name in IDENTIFIER_FIELDS:
            value = get(name)
            if isinstance(value, str) and is_direct_identifier(value):
                changes[name] = pseudonym(value)
    for name in TEXT_FIELDS.get(event_type, ()) if isinstance(event_type, str) else ():
        value = get(name)
        if isinstance(value, str) and value:
            cleaned = redact(value)
            if cleaned != value:
                changes[name] = cleaned
    for name in _URL_FIELDS:
        value = get(name)
        if isinstance(value, str) and "@" in value and name not in changes:
            changes[name] = EMAIL.sub("[email]", value)
    return changes


def clean_body(body: dict[str, Any], pseudonym: Pseudonym | None = None) -> dict[str, Any]:
    """An event dict made safe to send (changed in place and returned)."""
    body.update(_changes(body.get, body.get("type"), pseudonym))
    return body


def clean_event(event: Any, pseudonym: Pseudonym | None = None) -> Any:
    """A contract instance made safe to send (a copy when something changed)."""
    changes = _changes(lambda name: getattr(event, name, None), event.type, pseudonym)
    return event.model_copy(update=changes) if changes else event
