"""A consumer-group member that takes records in batches and flushes on its own rule.

The loop the sink and the stateful processors share: subscribe with assignment
callbacks, consume up to ``batch_rows`` records at a time, hand them to ``handle``, and
``flush`` (store, then commit) when ``flush_due`` says so, and once more on the way out.

Two ways to take a batch. librdkafka's ``consume(n, timeout)`` returns only when ``n``
records have arrived or the timeout has run out, so a worker that waits for a full batch
holds every record up to ``timeout`` under a light load (measured: p50 115 ms, p99 256 ms
produce -> consume at 1,000 records/s with a 0.2 s wait, against 9 ms / 23 ms taken
eagerly). A worker with ``consume_eagerly`` (delivery) waits for one record, then takes
every record already fetched, up to ``batch_rows``, without waiting: a backlog still comes
in full batches (librdkafka prefetches), a trickle comes at once. The sink keeps waiting
for full batches (it stores about once a second); so do the stateful processors for now
(streams/stateful.py says why).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from plumbing.produce import CLIENT_LOGGER

log = logging.getLogger(__name__)

#: Commit errors that mean the group has moved on without this member: it missed heartbeats or a
#: rebalance (a loaded machine, a long pause), and the coordinator gave its partitions to a new
#: generation. The offsets are not ours to commit any more; the next owner re-reads from the last
#: committed offset, and every worker skips what it already applied (the stateful host by the
#: offsets each key's changelog record carries, the sink by the stored ids). So the commit is
#: dropped, counted and logged; the consumer rejoins on its next poll.
LOST_MEMBERSHIP = frozenset({KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                             KafkaError.REBALANCE_IN_PROGRESS})


def consumer_config(kafka_config: dict[str, str], group_id: str, **overrides: Any) -> dict[str, Any]:
    """Consumer settings that work on Apache Kafka and on the embedded broker (see DESIGN.md)."""
    return {
        **kafka_config,
        "group.id": group_id,
        "logger": CLIENT_LOGGER,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",  # eager; cooperative-sticky loses partitions on Tansu
        "session.timeout.ms": 6000,  # Tansu group joins take session.timeout.ms / 2
        "heartbeat.interval.ms": 1000,
        # A worker is evicted when it does not call consume() for this long. On a loaded machine a batch
        # (or a producer waiting on a slow broker) took over the 5-minute default and the scorer was
        # evicted mid-run. A hung worker is caught by its own stall watch and /healthz, not by this.
        "max.poll.interval.ms": 1_800_000,
        "fetch.queue.backoff.ms": 10,  # the 1000 ms default stalls a consumer catching up
        **overrides,
    }


class BatchWorker(ABC):
    #: Take what has arrived as soon as one record is there, instead of waiting for a full batch.
    consume_eagerly = False

    def __init__(self, consumer_config: dict[str, Any], topics: list[str], batch_rows: int) -> None:
        self._consumer_config = consumer_config
        self.topics = topics
        self.batch_rows = batch_rows
        self._consumer: Consumer | None = None
        #: Whether the last ``consume`` came back short: the wait ran out before a full batch
        #: arrived, so the worker has read what there was (``flush_due`` may use it to flush early).
        self.caught_up = False
        #: Commits the group refused because this member had lost its partitions (``LOST_MEMBERSHIP``).
        self.commits_lost = 0

    @abstractmethod
    def handle(self, messages: list[Message]) -> None:
        """Take a batch of records (no storing or committing here)."""

    @abstractmethod
    def flush(self) -> None:
        """Store what was taken, then commit its offsets."""

    @abstractmethod
    def flush_due(self) -> bool:
        """Whether the records taken so far should be flushed now."""

    def flush_soon(self) -> None:
        """Start a flush that is due; a worker that stores in the background returns before it is done.

        The default flushes at once. Revocation and shutdown call ``flush``, which must finish.
        """
        self.flush()

    def configure_consumer(self, **options: Any) -> None:
        """Add or replace librdkafka options of the group consumer (before ``start``: it is made there)."""
        if self._consumer is not None:
            raise RuntimeError("the consumer is running: configure it before start()")
        self._consumer_config.update(options)

    def on_assign(self, partitions: list[TopicPartition]) -> None:  # noqa: B027 - optional hook
        """Partitions were assigned (load what they need before their records arrive)."""

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Partitions are being taken away: flush what was taken from them first."""
        self.flush()

    def start(self) -> None:
        self._consumer = Consumer(self._consumer_config)
        self._consumer.subscribe(self.topics, on_assign=lambda _, ps: self.on_assign(ps),
                                 on_revoke=lambda _, ps: self.on_revoke(ps))

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the last batch is flushed and committed before returning."""
        self.start()
        try:
            while not stop.is_set():
                self.poll(0.2)
            self.flush()
        finally:
            self.close()

    def poll(self, timeout: float) -> int:
        """Take what is available (up to one batch) and flush when due."""
        assert self._consumer is not None, "start() first"
        if self.consume_eagerly:
            # Each call's records are handled before the next call: a rebalance runs inside a call
            # (on_revoke flushes and drops the partition), so records taken before it must not be
            # handled after it.
            messages = self._consumer.consume(1, timeout)
            if messages:
                self.handle(messages)
                if self.batch_rows > 1:
                    more = self._consumer.consume(self.batch_rows - 1, 0)
                    if more:
                        self.handle(more)
                    messages += more
        else:
            messages = self._consumer.consume(self.batch_rows, timeout)
            if messages:
                self.handle(messages)
        self.caught_up = len(messages) < self.batch_rows
        if self.flush_due():
            self.flush_soon()
        return len(messages)

    def commit(self, offsets: list[TopicPartition]) -> None:
        """Commit ``offsets``; a commit refused because the group moved on is dropped (see ``LOST_MEMBERSHIP``)."""
        if self._consumer is None or not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if error is None or error.code() not in LOST_MEMBERSHIP:
                raise
            self.commits_lost += 1
            log.warning("commit of %d partition offsets refused (%s): this worker lost its partitions to a "
                        "rebalance; their next owner re-reads from the last committed offset and skips what "
                        "was applied", len(offsets), error.name())

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
