"""Checks shared by the source tests."""

from __future__ import annotations

from collections import Counter

from schemas.registry import INPUT_TOPICS
from streams.sources.record import SourceRecord
from streams.sources.stats import ReplayStats

Replay = tuple[list[SourceRecord], ReplayStats]


def check_records(records: list[SourceRecord]) -> Counter[str]:
    """Every record valid on its topic, keyed by its customer, in UTC, sorted, with unique ids; counts per type."""
    types: Counter[str] = Counter()
    ids: set[str] = set()
    previous = None
    for record in records:
        event = INPUT_TOPICS[record.topic].adapter.validate_json(record.value)
        assert record.key == event.customer_id.encode()
        assert record.event_time == event.event_time
        assert event.event_time.utcoffset().total_seconds() == 0
        assert previous is None or previous <= event.event_time, "sorted by event time"
        previous = event.event_time
        ids.add(event.event_id)
        types[event.type] += 1
    assert len(ids) == len(records), "event ids are unique"
    return types
