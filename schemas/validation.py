"""Decode and validate one input record: an accepted event, or a dead letter with the reason.

One function serves the sink, the processors, replays and tests, so every place
agrees on what is valid. Error details name the field and the rule broken, never
the offending value (it may be personal data).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
from pydantic import ValidationError

from schemas.chat import ChatMessage
from schemas.clickstream import ClickstreamEvent
from schemas.consent import ConsentChanged
from schemas.fast import decoder_for
from schemas.orders import OrderEvent
from schemas.outputs import DeadLetter
from schemas.personal import clear_identifier, is_direct_identifier, redact_bytes
from schemas.registry import INPUT_TOPICS, OUTPUT_TOPICS, TOPIC_OF_TYPE

#: An event time with more than 6 fractional digits: left to pydantic, so both paths give the same
#: instant. Matched at the key (not searched for): a search cost more than the decode itself.
_FINER_THAN_MICROSECONDS = re.compile(rb'"event_time"\s*:\s*"[^".]*\.\d{7}')

FAST_DECODERS = {topic: decoder_for(contract) for topic, contract in
                 {"clickstream": ClickstreamEvent, "orders": OrderEvent, "chat": ChatMessage,
                  "consent": ConsentChanged}.items()}


#: The earliest plausible event time by default: older ones are a parsing bug or a zero default
#: (1970-01-01, 0001-01-01) upstream, not history worth storing.
MIN_EVENT_TIME = datetime(1980, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """What ingestion refuses: payloads over ``max_bytes``; events further than ``max_future`` ahead of
    the wall clock; events before ``min_event_time``."""

    max_bytes: int = 64 * 1024
    max_future: timedelta = timedelta(minutes=5)
    min_event_time: datetime = MIN_EVENT_TIME


class Rejected(Exception):
    """Raised inside decoding with a reason code; turned into a dead letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_ERROR_REASONS = {
    "json_invalid": "malformed_json",
    "json_type": "malformed_json",
    "missing": "missing_field",
    "union_tag_not_found": "missing_field",
    "extra_forbidden": "unknown_field",
    "union_tag_invalid": "unknown_event_type",
    "model_attributes_type": "not_an_object",
    "model_type": "not_an_object",
    "dict_type": "not_an_object",
    "timezone_aware": "invalid_timestamp",
    "datetime_parsing": "invalid_timestamp",
    "datetime_from_date_parsing": "invalid_timestamp",
    "datetime_type": "invalid_timestamp",
    "invalid_timestamp": "invalid_timestamp",
    "event_time_out_of_range": "event_time_out_of_range",
    "missing_identity": "missing_identity",  # neither customer_id nor anonymous_id (schemas/base.py)
}


#: Every reason :func:`validate` and :func:`validate_output` give (the README lists them).
REASONS = frozenset({*_ERROR_REASONS.values(), "empty_value", "oversized", "invalid_field", "wrong_topic",
                     "missing_id", "unsupported_schema_version", "duplicate_key", "future_timestamp",
                     "event_time_out_of_range", "key_mismatch", "missing_key", "clear_identifier"})


def _describe(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    loc = tuple(first["loc"])
    reason = _ERROR_REASONS.get(first["type"], "invalid_field")
    if loc and loc[-1] == "schema_version" and first["type"] == "less_than_equal":
        reason = "unsupported_schema_version"
    elif loc and str(loc[-1]).endswith("_id") and first["type"] in ("missing", "string_too_short"):
        reason = "missing_id"
    detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in errors[:10])
    return reason, detail[:4096]


def fast_decode(topic: str, value: bytes) -> Any | None:
    """The msgspec mirror of ``value``'s event, or None when msgspec refuses it or must not decide."""
    at = value.find(b'"event_time"')
    if at >= 0 and _FINER_THAN_MICROSECONDS.match(value, at):
        return None  # msgspec rounds sub-microsecond times, pydantic truncates them
    try:
        return FAST_DECODERS[topic].decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):  # msgspec recurses on nested objects
        return None


def validate(topic: str, value: bytes | None, key: bytes | None, limits: Limits,
             now: datetime | None = None) -> Any:
    """The validated event for ``value`` on input ``topic``; raises :class:`Rejected` otherwise.

    The event is a msgspec mirror of the contract (schemas/fast.py) or, when only pydantic
    accepts the input, the pydantic model: both have the contract's attribute names.
    """
    if value is None or len(value) == 0:
        raise Rejected("empty_value", "record has no value")
    if len(value) > limits.max_bytes:
        raise Rejected("oversized", f"{len(value)} bytes exceeds the limit of {limits.max_bytes}")
    event = fast_decode(topic, value)  # the fast path; pydantic decides whatever it refuses
    if event is None:
        try:
            event = INPUT_TOPICS[topic].adapter.validate_json(value)
        except ValidationError as exc:
            reason, detail = _describe(exc)
            if reason == "unknown_event_type":
                reason, detail = _wrong_topic_or_unknown(topic, value, detail)
            raise Rejected(reason, detail) from None
    check_decoded(value, event, limits, now)
    if key is None:  # on a random partition, not its customer's: no per-customer order, no state can take it
        raise Rejected("missing_key", "record has no key (the key must be the customer_id: per-customer ordering)")
    if key != event.customer_id.encode():  # one encode, no decoding of the key
        raise Rejected("key_mismatch", "record key must equal the customer_id (per-customer ordering)")
    clear = clear_identifier(event)
    if clear is not None:
        raise Rejected("clear_identifier", clear)
    return event


def check_decoded(value: bytes, event: Any, limits: Limits, now: datetime | None = None) -> None:
    """What the contract's types cannot say, checked on an event either decoder made from ``value``:
    no key twice in one object, and the event time inside the plausible window. Raises :class:`Rejected`."""
    duplicate = duplicate_key(value, event)
    if duplicate is not None:
        raise Rejected("duplicate_key", f"{duplicate}: appears more than once in one object (which one counts?)")
    if event.event_time > _latest(now or datetime.now(UTC), limits.max_future):
        raise Rejected("future_timestamp", f"event_time is more than {limits.max_future} ahead of now")
    if event.event_time < limits.min_event_time:
        raise Rejected("event_time_out_of_range", f"event_time is before {limits.min_event_time.isoformat()}")


#: A key as the contracts name them (lower case and ``_``), with the colon after it. In JSON a ``"``
#: inside a string is escaped, so in a record the decoders accepted this matches keys only.
_KEY = re.compile(rb'"([a-z_]+)"\s*:')


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Duplicate(next(k for k in keys if keys.count(k) > 1))


def duplicate_key(value: bytes, event: Any) -> str | None:
    """The key that appears twice in one object of ``value`` (which decoded to ``event``), or None.

    Both JSON decoders keep the last of duplicate keys, so ``{"amount": 1, "amount": 900}`` would pass
    as 900 while another reader may take 1. Cheapest first (every record pays it): bytes that orjson
    writes back unchanged are a serialization of dicts, which cannot hold a key twice (what our
    sources send; about half a decode). Otherwise a duplicate must be a contract field (unknown keys
    are refused before), so one regex pass lists the keys; only when one repeats, or keys may be
    written with ``\\u`` escapes, or an order has several items (whose keys repeat legitimately), are
    the objects parsed pair by pair to tell.
    """
    try:
        if orjson.dumps(orjson.loads(value)) == value:
            return None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        pass
    items = getattr(event, "items", None)
    if not (isinstance(items, list) and len(items) > 1) and b"\\u" not in value:
        keys = _KEY.findall(value)
        if len(set(keys)) == len(keys):
            return None
    try:
        json.loads(value, object_pairs_hook=_unique_pairs)
    except _Duplicate as duplicate:
        return duplicate.key
    except (ValueError, RecursionError):  # what the contract's decoder parsed, json could not: no verdict here
        return None
    return None


def _latest(now: datetime, max_future: timedelta) -> datetime:
    """The latest event time accepted: ``now + max_future``, capped at the largest datetime (a skew of
    centuries is a setting, not a crash)."""
    try:
        return now + max_future
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def validate_output(topic: str, value: bytes | None) -> Any:
    """The validated record on output ``topic`` (a record our processors write); raises :class:`Rejected` otherwise.

    For a reader of an output topic that anyone else could write to: a record that does not fit
    the contract gets a dead letter with the same reason codes as input does, instead of a crash.
    """
    if value is None or len(value) == 0:
        raise Rejected("empty_value", "record has no value")
    try:
        return OUTPUT_TOPICS[topic].adapter.validate_json(value)
    except ValidationError as exc:
        raise Rejected(*_describe(exc)) from None


def _wrong_topic_or_unknown(topic: str, value: bytes, detail: str) -> tuple[str, str]:
    try:
        event_type = orjson.loads(value).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return "unknown_event_type", detail
    home = TOPIC_OF_TYPE.get(event_type) if isinstance(event_type, str) else None
    if home and home != topic:
        return "wrong_topic", f"type {event_type!r} belongs on topic {home!r}, not {topic!r}"
    return "unknown_event_type", f"type is not one of {', '.join(INPUT_TOPICS[topic].event_types)}"


def dead_letter_id(topic: str, key: bytes | None, value: bytes | None) -> str:
    """Stable id from where and what: the same bad record replayed twice is one dead letter."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (topic.encode(), key or b"", value or b""):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return f"dl-{digest.hexdigest()}"


#: The most original bytes a dead letter carries (whole below it; its first bytes, with the length and
#: SHA-256 of the whole, above): base64 makes it a third larger, and the letter must stay well under
#: Kafka's default record limit of 1,000,000 bytes (over it, producing the letter fails).
MAX_ORIGINAL_BYTES = 256 * 1024
#: The most key bytes a dead letter carries.
MAX_KEY_BYTES = 4 * 1024


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                reason: str, detail: str, received_at: datetime | None = None) -> DeadLetter:
    """The dead letter of one record: bounded in size whatever the record's (see ``MAX_ORIGINAL_BYTES``)."""
    letter_id = dead_letter_id(topic, key, value)
    raw = value or b""
    truncated = len(raw) > MAX_ORIGINAL_BYTES or (key is not None and len(key) > MAX_KEY_BYTES)
    # The original is kept, but never with a clear email, phone or IP address in it (schemas/personal.py).
    if key is not None and is_direct_identifier(key.decode("utf-8", "replace")):
        key = b"[identifier]"
    return DeadLetter(
        dead_letter_id=letter_id,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason,
        detail=detail,
        key=base64.b64encode(key[:MAX_KEY_BYTES]).decode() if key is not None else None,
        original=base64.b64encode(redact_bytes(raw)[:MAX_ORIGINAL_BYTES]).decode(),
        received_at=received_at or datetime.now(UTC),
        original_length=len(raw),
        original_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=truncated,
    )
