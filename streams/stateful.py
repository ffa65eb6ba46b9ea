"""A keyed, stateful stream worker: co-partitioned input topics in, per-key state, outputs out.

It is the host that keeps the hot path out of per-message framework machinery:
librdkafka does group membership and (eager, range) assignment, records arrive in
batches of up to ``batch_rows``, state lives in a dict per partition, and state writes
are coalesced: one changelog record per changed key per flush.

Commit protocol, per flush (every ``flush_seconds`` or ``batch_rows`` records):

1. For every key changed since the last flush, its state is written to the compacted
   changelog topic (same partition number as the inputs). Each record carries, with
   the state, the input offsets already applied to that key.
2. The processor's outputs for the changed keys are produced.
3. The producer is flushed (everything acknowledged), then the input offsets are committed.

After a crash, a worker assigned partition p reads the changelog partition to its end
(partition EOF, not the end offset, which the embedded broker can report wrongly),
then resumes from the committed offsets. A redelivered record whose offset is at or
below the offset its key already applied is skipped, so nothing is counted twice and
nothing is lost, without transactions.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from streams.batch_worker import BatchWorker, consumer_config
from streams.produce import CLIENT_LOGGER, PARTITIONER

log = logging.getLogger(__name__)
S = TypeVar("S")

#: (topic, key, value) to produce.
Output = tuple[str, bytes | None, bytes]


class Processor(Protocol[S]):
    """The domain side: plain Python, no Kafka."""

    def new_state(self, key: str) -> S: ...

    def process(self, state: S, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        """Apply one record; return immediate outputs (side outputs). Invalid records: return []."""

    def emit(self, key: str, state: S) -> list[Output]:
        """Outputs for a key whose state changed since the last flush (coalesced)."""


@dataclass
class Entry(Generic[S]):
    state: S
    applied: dict[str, int] = field(default_factory=dict)  # input topic -> last applied offset


@dataclass
class WorkerStats:
    consumed: int = 0
    consumed_by_topic: Counter[str] = field(default_factory=Counter)  # read by the metrics endpoint
    skipped_redelivered: int = 0
    changelog_records: int = 0
    outputs: int = 0
    restored_keys: int = 0
    flushes: int = 0


class StatefulWorker(BatchWorker, Generic[S]):
    """One member of a processor group; run several with the same group id to share partitions."""

    def __init__(self, kafka_config: dict[str, str], group_id: str, topics: list[str], changelog: str,
                 processor: Processor[S], batch_rows: int = 10_000, flush_seconds: float = 1.0,
                 consumer_overrides: dict[str, Any] | None = None) -> None:
        super().__init__(consumer_config(kafka_config, group_id, **(consumer_overrides or {})), topics, batch_rows)
        self.processor = processor
        self.changelog = changelog
        self.flush_seconds = flush_seconds
        self.stats = WorkerStats()
        self.stores: dict[int, dict[str, Entry[S]]] = {}
        self._kafka = kafka_config
        self._producer = Producer({**kafka_config, "partitioner": PARTITIONER, "logger": CLIENT_LOGGER,
                                   "linger.ms": 5, "batch.num.messages": 10_000,
                                   "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False})
        self._dirty: dict[int, set[str]] = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._last_flush = time.monotonic()
        self._errors: list[str] = []
        self.on_flush: Callable[[], None] | None = None

    # -- membership -------------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        new = sorted({tp.partition for tp in partitions} - set(self.stores))
        if new:
            self.stores.update(self._restore(new))
            for p in new:
                self._dirty.setdefault(p, set())

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.flush()
        for p in {tp.partition for tp in partitions}:
            self.stores.pop(p, None)
            self._dirty.pop(p, None)

    def _restore(self, partitions: list[int]) -> dict[int, dict[str, Entry[S]]]:
        """Read the changelog partitions to their ends (partition EOF); the last record per key wins."""
        started = time.monotonic()
        reader = Consumer({**self._kafka, "group.id": f"{self.changelog}-restore", "enable.auto.commit": False,
                           "enable.partition.eof": True, "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10})
        reader.assign([TopicPartition(self.changelog, p, OFFSET_BEGINNING) for p in partitions])
        stores: dict[int, dict[str, Entry[S]]] = {p: {} for p in partitions}
        pending = set(partitions)
        try:
            while pending:
                for msg in reader.consume(10_000, 0.1):
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            raise RuntimeError(f"restoring {self.changelog}[{msg.partition()}]: {error.str()}")
                        pending.discard(msg.partition())
                        continue
                    store = stores[msg.partition()]
                    key = msg.key().decode()
                    if msg.value() is None:
                        store.pop(key, None)
                    else:
                        store[key] = pickle.loads(msg.value())
        finally:
            reader.close()
        restored = sum(map(len, stores.values()))
        self.stats.restored_keys += restored
        log.info("restored %d keys of %s%s in %.2fs", restored, self.changelog, partitions, time.monotonic() - started)
        return stores

    # -- processing -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> WorkerStats:  # type: ignore[override]
        super().run(stop)
        return self.stats

    def flush_due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.flush_seconds

    def handle(self, messages: list[Message]) -> None:
        processor, produce = self.processor, self._produce
        for msg in messages:
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error().str())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            self._positions[(topic, partition)] = offset + 1
            self.stats.consumed += 1
            self.stats.consumed_by_topic[topic] += 1
            raw_key = msg.key()
            key = raw_key.decode("utf-8", "replace") if raw_key else ""
            store = self.stores.get(partition)
            if store is None:  # not assigned any more (revoked mid-batch)
                continue
            entry = store.get(key)
            if entry is None:
                entry = store[key] = Entry(processor.new_state(key))
            elif entry.applied.get(topic, -1) >= offset:
                self.stats.skipped_redelivered += 1
                continue
            for output in processor.process(entry.state, topic, msg.value(), raw_key):
                produce(*output)
            entry.applied[topic] = offset
            self._dirty[partition].add(key)

    def _produce(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value, key, on_delivery=self._on_delivery)
                else:
                    self._producer.produce(topic, value, key, partition=partition, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def flush(self) -> None:
        """Steps 1-3 of the commit protocol."""
        for partition, keys in self._dirty.items():
            store = self.stores[partition]
            for key in keys:
                entry = store[key]
                self._produce(self.changelog, key.encode(), pickle.dumps(entry, pickle.HIGHEST_PROTOCOL), partition)
                self.stats.changelog_records += 1
                for output in self.processor.emit(key, entry.state):
                    self._produce(*output)
                    self.stats.outputs += 1
            keys.clear()
        remaining = self._producer.flush(60)
        if remaining or self._errors:
            raise RuntimeError(f"changelog/outputs not acknowledged ({remaining} pending, errors: {self._errors[:3]});"
                               " offsets not committed")
        if self._positions and self._consumer is not None:
            self.commit([TopicPartition(t, p, o) for (t, p), o in self._positions.items()])
            self._positions = {}
        self.stats.flushes += 1
        self._last_flush = time.monotonic()
        if self.on_flush is not None:
            self.on_flush()
