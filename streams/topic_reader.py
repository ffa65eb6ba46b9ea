"""Reading a topic's partitions from the beginning to their end, once (partition EOF, exact on every broker)."""

from __future__ import annotations

import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from plumbing.produce import CLIENT_LOGGER

Record = tuple[int, bytes | None, bytes | None]  # partition, key, value


def read_to_end(kafka: dict[str, str], topic: str, partitions: list[int] | None = None) -> list[Record]:
    """Every record of ``partitions`` (default: all; none if the topic does not exist), in offset order."""
    if partitions is None:
        metadata = AdminClient(kafka).list_topics(topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = sorted(metadata.partitions)
    if not partitions:
        return []
    reader = Consumer({**kafka, "group.id": f"{topic}-reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                       "enable.partition.eof": True, "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10})
    pending = set(partitions)
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
    out: list[Record] = []
    try:
        while pending:
            for msg in reader.consume(10_000, 0.5):
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"reading {topic}[{msg.partition()}]: {msg.error().str()}")
                    pending.discard(msg.partition())
                    continue
                out.append((msg.partition(), msg.key(), msg.value()))
    finally:
        reader.close()
    return out
