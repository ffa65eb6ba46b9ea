"""One customer's latest profile: from the running pipeline's topic, or from ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from plumbing.partitioner import partition_for
from plumbing.restore import Ends, end_reader, read_until_end
from plumbing.waiting import StallWatch
from schemas.registry import CUSTOMER_FEATURES
from sinks.access import Reader


def profile_from_topic(kafka_config: dict[str, str], customer_id: str, partitions: int,
                       stall: float | None = None) -> dict[str, Any] | None:
    """The newest ``customer-features`` record of the customer (reads only the customer's partition).

    No fixed deadline: it reads while records arrive, and fails only after the stall time
    (``stall_seconds``) without a record or the partition's end."""
    key = customer_id.encode()
    reader = end_reader(kafka_config, "journey-customer-lookup")
    latest: bytes | None = None
    watch = StallWatch(f"reading {CUSTOMER_FEATURES} to its end", stall)
    read = 0

    def take(msg: Message) -> None:
        nonlocal latest, read
        read += 1
        if msg.key() == key:
            latest = msg.value()

    def watching(_reading: Ends) -> None:
        watch.observe(read)
        watch.check()

    try:
        read_until_end(reader, [TopicPartition(CUSTOMER_FEATURES, partition_for(key, partitions),
                                               OFFSET_BEGINNING)], take, timeout=0.2, between=watching, errors="skip")
    finally:
        reader.close()
    return orjson.loads(latest) if latest else None


def profile_from_clickhouse(reader: Reader, customer_id: str) -> dict[str, Any] | None:
    """The latest stored profile (``customer_profiles`` FINAL)."""
    _, rows = reader.rows(
        "SELECT as_of, events_total, stage, stage_since, segments, last_seen, features FROM customer_profiles FINAL "
        "WHERE customer_id = {id:String}", {"id": customer_id})
    if not rows:
        return None
    as_of, events, stage, since, segments, last_seen, features = rows[0]
    return {"customer_id": customer_id, "as_of": _iso(as_of), "events_total": events, "stage": stage,
            "stage_since": _iso(since), "segments": list(segments), "last_seen": _iso(last_seen),
            "features": orjson.loads(features)}


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, as the topic's records write it."""
    return value.astimezone(UTC).isoformat() if value is not None else None
