"""Records of any size become dead letters of bounded size, on the topic and in the table (issue 17, item 4).

A dead letter used to carry the whole original in base64: one for a record over about 750 KB
was over Kafka's 1 MB record limit, producing it failed (MSG_SIZE_TOO_LARGE) and the sink died.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError

from plumbing.batch_worker import consumer_config
from plumbing.produce import TrackingProducer
from schemas.validation import MAX_ORIGINAL_BYTES
from streams.progress import end_offsets_by_eof
from tests.conftest import Backend, sink_until_caught_up
from tests.integration.test_dead_letters import good

pytestmark = pytest.mark.integration


def padded(i: int, size: int) -> bytes:
    """A clickstream event of exactly ``size`` bytes (a long product id makes up the rest)."""
    head = good(i)[:-1] + b', "padding": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def read_letters(kafka: dict[str, str], partitions: int) -> list[tuple[dict[str, object], list[tuple[str, bytes]]]]:
    """Every record on ``dead-letters`` (value, headers), read to the end of each partition."""
    from confluent_kafka import TopicPartition

    reader = Consumer({**consumer_config(kafka, f"dlq-{uuid.uuid4().hex[:6]}"), "enable.partition.eof": True})
    reader.assign([TopicPartition("dead-letters", p, 0) for p in range(partitions)])
    pending, found = set(range(partitions)), []
    try:
        while pending:
            for msg in reader.consume(100, 1.0):
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    continue
                found.append((orjson.loads(msg.value()), msg.headers() or []))
    finally:
        reader.close()
    return found


def test_records_of_a_megabyte_and_around_the_bound_become_bounded_dead_letters(backend: Backend) -> None:
    sizes = [990_000 - i for i in range(12)] + [MAX_ORIGINAL_BYTES - 1, MAX_ORIGINAL_BYTES, MAX_ORIGINAL_BYTES + 1]
    bad = [padded(100 + i, size) for i, size in enumerate(sizes)]
    assert [len(b) for b in bad] == sizes
    producer = TrackingProducer(backend.kafka, **{"message.max.bytes": 2_000_000})
    for i, value in enumerate(bad):
        producer.send_raw("clickstream", b"c1", good(2 * i))
        producer.send_raw("clickstream", b"c1", value)
    producer.send_raw("clickstream", b"c1", good(999))
    producer.flush()
    client = backend.client()
    stats = sink_until_caught_up(backend, client, producer.end_offsets, batch_rows=5, min_batch_rows=1)

    assert client.query("SELECT count() FROM clickstream_events").result_rows[0][0] == len(bad) + 1
    rows = client.query("SELECT original, original_length, original_sha256, truncated, reason FROM dead_letters "
                        "ORDER BY original_length").result_rows
    want = sorted(bad, key=len)
    assert len(rows) == len(bad) == 15
    for (original, length, sha, truncated, reason), value in zip(rows, want, strict=True):
        whole = len(value) <= MAX_ORIGINAL_BYTES
        original = original if isinstance(original, bytes) else original.encode("latin-1")
        assert reason == "oversized"
        assert (length, sha, truncated) == (len(value), hashlib.sha256(value).hexdigest(), not whole)
        assert original == (value if whole else value[:MAX_ORIGINAL_BYTES])
    assert stats.dead_letters["oversized"] == 15

    ends = end_offsets_by_eof(backend.kafka, ["dead-letters"])
    assert sum(ends.values()) == 15
    letters = read_letters(backend.kafka, backend.partitions)
    assert len(letters) == 15 and all(("journey-stored", b"dead_letters") in h for _, h in letters)
    by_length = sorted((letter for letter, _ in letters), key=lambda d: d["original_length"])
    for letter, value in zip(by_length, want, strict=True):
        whole = len(value) <= MAX_ORIGINAL_BYTES
        assert base64.b64decode(letter["original"]) == (value if whole else value[:MAX_ORIGINAL_BYTES])
        assert letter["original_sha256"] == hashlib.sha256(value).hexdigest()
        assert letter["truncated"] is (not whole)
