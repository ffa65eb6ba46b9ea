"""Producing events with confluent-kafka, tracking what the broker acknowledged.

The producer remembers, per partition, the offset after the last acknowledged
record. That is the true end of what was fed (the embedded broker's high
watermark can be wrong), so progress compares consumer commits with it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from pydantic import BaseModel

from plumbing.waiting import flush_following, stall_seconds

#: Kafka's default (Java) partitioner, so any producer puts a customer on the same partition.
PARTITIONER = "murmur2_random"

#: Records queued between two polls for delivery reports.
POLL_EVERY = 1_000

#: librdkafka's own log lines go through Python logging (not straight to stderr).
CLIENT_LOGGER = logging.getLogger("librdkafka")


class DeliveryFailed(RuntimeError):
    """The broker refused or lost records after the producer's retries."""


class TrackingProducer:
    """A confluent-kafka producer that counts acknowledged records and their end offsets."""

    def __init__(self, kafka_config: dict[str, str], **overrides: Any) -> None:
        config: dict[str, Any] = {
            **kafka_config,
            "partitioner": PARTITIONER,
            "logger": CLIENT_LOGGER,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "enable.idempotence": False,  # the embedded broker has no idempotent producer support
            **overrides,
        }
        self._producer = Producer(config)
        self.end_offsets: dict[tuple[str, int], int] = {}
        self.delivered: Counter[str] = Counter()
        self.errors: list[str] = []
        self._unpolled = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err.str()}")
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        self.delivered[topic] += 1
        tp = (topic, partition)
        if offset + 1 > self.end_offsets.get(tp, 0):
            self.end_offsets[tp] = offset + 1

    def _reporting_to(self, callback: Callable[[KafkaError | None, Message], None]) -> Callable[..., None]:
        """A delivery callback that tracks an acknowledged record and hands every outcome to ``callback``."""
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                self._on_delivery(None, msg)
            callback(err, msg)
        return report

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 headers: list[tuple[str, bytes]] | None = None,
                 on_delivery: Callable[[KafkaError | None, Message], None] | None = None) -> None:
        """Queue one record, waiting for room when the local queue is full.

        Delivery reports are served every ``POLL_EVERY`` records (and by ``flush``): a poll per
        record cost about a tenth of the producer's time. ``on_delivery``: the caller handles this
        record's outcome (a failure is then not one of ``errors``, and ``flush`` does not raise for it).
        """
        callback = self._on_delivery if on_delivery is None else self._reporting_to(on_delivery)
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=callback, headers=headers)
                break
            except BufferError:
                self._producer.poll(0.05)
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._unpolled = 0
            self._producer.poll(0)

    def send(self, topic: str, event: BaseModel, key: str | None = None,
             headers: list[tuple[str, bytes]] | None = None,
             on_delivery: Callable[[KafkaError | None, Message], None] | None = None) -> None:
        """Queue a contract instance as JSON, keyed by its customer id unless ``key`` is given."""
        record_key = key if key is not None else getattr(event, "customer_id", None)
        self.send_raw(topic, record_key.encode() if record_key is not None else None,
                      event.__pydantic_serializer__.to_json(event), headers, on_delivery=on_delivery)

    def send_all(self, records: Iterable[tuple[str, BaseModel]]) -> int:
        count = 0
        for topic, event in records:
            self.send(topic, event)
            count += 1
        return count

    def poll(self, timeout: float = 0) -> None:
        self._producer.poll(timeout)

    def wait(self, timeout: float) -> int:
        """Serve delivery reports for up to ``timeout`` seconds; the records still unacknowledged (never raises)."""
        return int(self._producer.flush(timeout))

    def flush(self, stall: float | None = None, between: Callable[[], None] | None = None) -> None:
        """Wait for every queued record while acknowledgements keep coming (no fixed deadline; ``between``
        runs about every second); raise :class:`DeliveryFailed` if any was not stored."""
        remaining = flush_following(self._producer, stall, between)
        if remaining:
            raise DeliveryFailed(f"{remaining} records still unacknowledged after {stall_seconds(stall):.0f}s "
                                 "without an acknowledgement")
        if self.errors:
            raise DeliveryFailed(f"{len(self.errors)} records failed, first: {self.errors[0]}")
