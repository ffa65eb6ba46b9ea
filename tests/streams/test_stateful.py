"""The stateful worker keeps no state for a key whose first record its processor refused, nor for no key."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from streams.produce import TrackingProducer
from streams.topics import CHANGELOGS
from tests.conftest import Backend
from tests.integration.test_features_exact import run_features

pytestmark = pytest.mark.integration


def changelog_keys(kafka: dict[str, str], topic: str, partitions: int) -> list[bytes]:
    """Every key on ``topic``, read to the end of each partition."""
    reader = Consumer({**kafka, "group.id": "changelog-keys", "enable.partition.eof": True,
                       "receive.message.max.bytes": 100_000_000})
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    pending, keys = set(range(partitions)), []
    for _ in range(300):
        for msg in reader.consume(1000, 0.2):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                continue
            keys.append(msg.key() or b"")
        if not pending:
            break
    reader.close()
    assert not pending
    return keys


def test_a_refused_record_with_a_new_key_makes_no_state_and_a_10mb_key_stops_nothing(backend: Backend) -> None:
    view = {"event_id": "v-1", "customer_id": "c-ok", "event_time": "2024-05-01T10:00:00Z", "type": "page_view"}
    huge = b"k" * 10_000_000  # a changelog record under this key would exceed the producer's 1 MB limit
    records = [("clickstream", huge, orjson.dumps({**view, "event_id": "v-huge", "customer_id": "k"})),
               ("clickstream", b"ghost", b"not json at all"),
               ("orders", b"ghost-2", b"[]"),
               ("clickstream", None, orjson.dumps({**view, "event_id": "v-keyless", "customer_id": "c-keyless"})),
               ("clickstream", b"c-ok", orjson.dumps(view))]
    producer = TrackingProducer(backend.kafka, **{"message.max.bytes": 32_000_000})
    for topic, key, value in records:
        producer.send_raw(topic, key, value)
    producer.flush()
    assert not producer.errors
    worker = run_features(backend, producer.end_offsets, group="features-refused")  # asserts it stays alive
    assert worker.stats.consumed == 5
    assert changelog_keys(backend.kafka, CHANGELOGS["features"], backend.partitions) == [b"c-ok"]
    assert worker.stats.refused_without_state == 3
    assert worker.stats.keyless_refused == 1, "a keyless record is no state of a customer named ''"
