"""The stateful worker with hostile input: no state for a refused new key nor for no key; a record its
processor raises on is dead-lettered and the worker goes on."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from plumbing.produce import TrackingProducer
from processors.features.build import build_features
from processors.features.processor import FeaturesProcessor
from schemas.registry import DEAD_LETTERS
from streams.progress import end_offsets_by_eof
from streams.topics import CHANGELOGS
from tests.conftest import Backend, sink_until_caught_up
from tests.integration.test_features_exact import run_features
from tests.integration.test_scoring_pipeline import read_all

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


class Poisoned(FeaturesProcessor):
    """The real features processor, made to raise on one event id (a stand-in for a bug a record triggers)."""

    def process(self, state: Any, topic: str, value: bytes | None, key: bytes | None) -> list[Any]:
        if value is not None and b'"poison' in value:
            raise ZeroDivisionError("a bug that quotes the record: c-ok")
        return super().process(state, topic, value, key)


def test_a_record_the_processor_raises_on_is_dead_lettered_and_the_worker_goes_on(backend: Backend) -> None:
    def view(event_id: str, customer: str, minute: int) -> tuple[str, bytes, bytes]:
        return ("clickstream", customer.encode(), orjson.dumps({
            "event_id": event_id, "customer_id": customer, "event_time": f"2024-05-01T10:{minute:02d}:00Z",
            "type": "page_view"}))

    records = [view("v-1", "c-ok", 1), view("poison-1", "c-ok", 2), view("poison-2", "c-new", 3),
               view("v-2", "c-ok", 4)]
    producer = TrackingProducer(backend.kafka)
    for topic, key, value in records:
        producer.send_raw(topic, key, value)
    producer.flush()
    processor = Poisoned(build_features().engine)
    worker = run_features(backend, producer.end_offsets, group="features-poison", processor=processor)
    assert (worker.stats.consumed, worker.stats.processing_failed) == (4, 2)
    letters = read_all(backend.kafka, DEAD_LETTERS, backend.partitions)
    assert sorted((base64.b64decode(letter["original"]), letter["reason"]) for letter in letters) == \
        sorted((value, "processing_failed") for _, _, value in records[1:3])
    assert all("ZeroDivisionError" in letter["detail"] and "c-ok" not in letter["detail"] for letter in letters)
    profiles = read_all(backend.kafka, "customer-features", backend.partitions)
    assert [(p["customer_id"], p["events_total"]) for p in profiles][-1] == ("c-ok", 2)
    assert {p["customer_id"] for p in profiles} == {"c-ok"}, "no state, so no profile, for the poisoned new key"
    client = backend.client()  # the sink stores the worker's letters like its own
    sink_until_caught_up(backend, client, {**producer.end_offsets,
                                           **end_offsets_by_eof(backend.kafka, [DEAD_LETTERS, "customer-features"])})
    assert client.query("SELECT reason, source_offset FROM dead_letters ORDER BY source_offset").result_rows == \
        [("processing_failed", offset) for offset in sorted(_offsets(backend.kafka, records[1:3]))]


def _offsets(kafka: dict[str, str], records: list[tuple[str, bytes, bytes]]) -> list[int]:
    """The offsets at which ``records`` landed, read back from their topic."""
    wanted = {value for _, _, value in records}
    reader = Consumer({**kafka, "group.id": "offsets", "enable.partition.eof": True})
    topic = records[0][0]
    partitions = len(reader.list_topics(topic, timeout=10).topics[topic].partitions)
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    pending, found = set(range(partitions)), []
    for _ in range(300):
        for msg in reader.consume(1000, 0.2):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
            elif msg.value() in wanted:
                found.append(msg.offset())
        if not pending:
            break
    reader.close()
    assert len(found) == len(wanted)
    return found
