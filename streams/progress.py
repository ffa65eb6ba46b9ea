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
