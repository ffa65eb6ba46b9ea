"""How far a consumer group has got: committed offsets against what the producer fed."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from streams.produce import CLIENT_LOGGER


class GroupProgress:
    """Reads a group's committed offsets without joining the group."""

    def __init__(self, kafka_config: dict[str, str], group_id: str) -> None:
        self._consumer = Consumer({**kafka_config, "group.id": group_id, "enable.auto.commit": False,
                                   "logger": CLIENT_LOGGER})

    def committed(self, partitions: list[tuple[str, int]], timeout: float = 10.0) -> dict[tuple[str, int], int]:
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        result = self._consumer.committed(tps, timeout=timeout)
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in result}

    def remaining(self, end_offsets: dict[tuple[str, int], int]) -> int:
        """Records fed but not yet committed by the group (0 when it has caught up)."""
        if not end_offsets:
            return 0
        committed = self.committed(list(end_offsets))
        return sum(max(end - committed.get(tp, 0), 0) for tp, end in end_offsets.items())

    def close(self) -> None:
        self._consumer.close()


def end_offsets_by_eof(kafka_config: dict[str, str], topics: list[str], timeout: float = 60.0,
                       from_watermark: bool = False) -> dict[tuple[str, int], int]:
    """The true end of each partition, found by reading to partition EOF.

    Slower than asking for the high watermark, but exact on every broker (the embedded
    broker's ListOffsets can be wrong when the newest batch holds several records: it
    reports one past that batch's first record). ``from_watermark`` reads only from the
    reported watermark on (never past the end), which is as exact and cheap on a long topic.
    """
    import time

    from confluent_kafka import OFFSET_BEGINNING, KafkaError

    reader = Consumer({**kafka_config, "group.id": "journey-eof-reader", "enable.auto.commit": False,
                       "enable.partition.eof": True, "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10})
    try:
        metadata = reader.list_topics(timeout=10)
        tps = [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata.topics[t].partitions]
        if from_watermark:
            for tp in tps:
                tp.offset = reader.get_watermark_offsets(tp, timeout=10)[1]
        ends = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in tps}
        pending = set(ends)
        reader.assign(tps)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end of partition for {sorted(pending)} within {timeout:.0f}s")
            for msg in reader.consume(10_000, 1.0):
                tp = (msg.topic(), msg.partition())
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(tp)
                    continue
                ends[tp] = msg.offset() + 1
        return ends
    finally:
        reader.close()
