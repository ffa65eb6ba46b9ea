"""Mapped replays with identity fields: ``--map anonymous_id=COL,...``, keyed by the event's subject."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.validation import Limits, validate
from streams.sources.mapped import mapped, parse_mapping

MAP = "customer_id=customer_id,anonymous_id=anonymous_id,event_time=ts,type=type,product_id=product_id"


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_anonymous_rows_are_keyed_by_their_visitor_and_identify_by_the_customer(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "journey.jsonl", [
        {"anonymous_id": "a-1", "ts": "2026-01-01T10:00:00Z", "type": "product_view", "product_id": "p1"},
        {"anonymous_id": "a-1", "customer_id": "c-1", "ts": "2026-01-01T10:05:00Z", "type": "identify"},
        {"customer_id": "c-1", "ts": "2026-01-01T10:06:00Z", "type": "product_view", "product_id": "p2"},
    ])
    records = mapped(path, "jsonl", MAP)
    assert [(r.topic, r.key) for r in records] == [("clickstream", b"a-1"), ("clickstream", b"c-1"),
                                                  ("clickstream", b"c-1")]
    events = [validate(r.topic, r.value, r.key, Limits()) for r in records]
    assert [(e.type, e.customer_id, e.anonymous_id) for e in events] == [
        ("product_view", "a-1", "a-1"), ("identify", "c-1", "a-1"), ("product_view", "c-1", None)]


def test_a_mapping_needs_customer_id_or_anonymous_id() -> None:
    assert "anonymous_id" in parse_mapping("anonymous_id=cookie,event_time=ts,type=type")
    with pytest.raises(ValueError, match="'customer_id' or 'anonymous_id'"):
        parse_mapping("event_time=ts,type=type")
