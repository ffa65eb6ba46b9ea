"""The two decoders validate() uses, each alone, so tests can compare their verdicts on the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.registry import INPUT_TOPICS
from schemas.validation import Limits, Rejected, check_decoded, fast_decode

#: The clock both paths are judged by.
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _checked(value: bytes, event: Any) -> Any | None:
    try:
        check_decoded(value, event, Limits(), NOW)
    except Rejected:
        return None
    return event


def fast(topic: str, value: bytes) -> Any | None:
    """The msgspec path's event, or None when it refuses (a duplicate key, a time outside the window too)."""
    event = fast_decode(topic, value)
    return None if event is None else _checked(value, event)


def contract(topic: str, value: bytes) -> Any | None:
    """The pydantic contract's event, or None when it refuses (a duplicate key, a time outside the window too)."""
    try:
        event = INPUT_TOPICS[topic].adapter.validate_json(value)
    except ValidationError:
        return None
    return _checked(value, event)


def same(fast_event: Any, model: Any) -> None:
    """Every contract field of ``model`` has the same value on ``fast_event`` (list items field by field)."""
    assert fast_event.type == model.type
    for name in type(model).model_fields:
        expected, got = getattr(model, name), getattr(fast_event, name)
        if isinstance(expected, list):
            assert len(got) == len(expected)
            for g, e in zip(got, expected, strict=True):
                if isinstance(e, BaseModel):
                    assert {f: getattr(g, f) for f in type(e).model_fields} == e.model_dump(), name
                else:
                    assert g == e, name
        else:
            assert got == expected, name
