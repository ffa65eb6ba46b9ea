"""Our murmur2 partitioner agrees with librdkafka's on the real broker."""

from __future__ import annotations

import pytest

from plumbing.partitioner import partition_for
from tests.conftest import Backend

pytestmark = pytest.mark.integration


def test_partition_for_matches_the_producer(backend: Backend) -> None:
    from confluent_kafka import Producer

    placed: dict[bytes, int] = {}
    producer = Producer({**backend.kafka, "partitioner": "murmur2_random"})
    keys = [str(i).encode() for i in range(300)] + [b"", b"a", b"ab", b"abc", "clé-ü".encode(), b"x" * 37]

    def delivered(err: object, msg: object) -> None:
        placed[msg.key()] = msg.partition()  # type: ignore[attr-defined]

    for key in keys:
        producer.produce("clickstream", b"{}", key, on_delivery=delivered)
    producer.flush(30)
    assert {k: partition_for(k, backend.partitions) for k in keys if k} == {k: v for k, v in placed.items() if k}
