"""Reading topic partitions to their end: the one loop every restore, lookup and catch-up uses.

The end is the partition EOF event (``enable.partition.eof``), not the end offset, which the
embedded broker can report wrongly. :class:`Ends` tells records from end-of-partition events
(and errors) in what a consumer returned; :func:`read_until_end` assigns partitions and feeds every
record to a callback until each partition said it is at its end. Callers keep their own policy:
what to do with a record, how long to wait per poll, whether an error fails the read or is
skipped, and what to watch between polls (a stall watch, progress).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from plumbing.produce import CLIENT_LOGGER

Record = tuple[int, bytes | None, bytes | None]  # partition, key, value


def end_reader(kafka: dict[str, str], group: str, **overrides: Any) -> Consumer:
    """A consumer for reading to the end: partition EOF on, nothing committed, the client logger."""
    return Consumer({**kafka, "group.id": group, "enable.auto.commit": False, "enable.partition.eof": True,
                     "logger": CLIENT_LOGGER, **overrides})


class Ends:
    """Which of the assigned partitions have reported their end; :meth:`records` sorts a consumed batch.

    ``errors``: ``"raise"`` fails on any error other than the end (naming the topic and partition),
    ``"skip"`` ignores it. An error whose code is in ``end_codes`` (e.g. an unknown topic) ends the
    whole read: there is nothing to wait for.
    """

    def __init__(self, parts: Iterable[tuple[str, int]], errors: Literal["raise", "skip"] = "raise",
                 end_codes: Iterable[int] = ()) -> None:
        self.pending: set[tuple[str, int]] = set(parts)
        self.errors = errors
        self.end_codes = frozenset(end_codes)

    @property
    def done(self) -> bool:
        return not self.pending

    def records(self, messages: list[Message]) -> list[Message]:
        """The records among ``messages``; ends recorded, errors raised or skipped."""
        out = []
        for msg in messages:
            error = msg.error()
            if error is None:
                out.append(msg)
                continue
            code = error.code()
            if code == KafkaError._PARTITION_EOF:
                self.pending.discard((msg.topic(), msg.partition()))
            elif code in self.end_codes:
                self.pending.clear()
            elif self.errors == "raise":
                raise RuntimeError(f"reading {msg.topic()}[{msg.partition()}]: {error.str()}")
        return out


def read_until_end(reader: Consumer, assignment: list[TopicPartition], on_record: Callable[[Message], Any], *,
                   batch: int = 10_000, timeout: float = 0.1, between: Callable[[Ends], None] | None = None,
                   errors: Literal["raise", "skip"] = "raise", end_codes: Iterable[int] = ()) -> None:
    """Assign ``assignment`` to ``reader`` and call ``on_record`` for each record, in offset order per
    partition, until every partition reported its end. ``between`` runs before each poll (a stall
    watch; it may raise). The caller closes ``reader``."""
    ends = Ends(((tp.topic, tp.partition) for tp in assignment), errors, end_codes)
    reader.assign(assignment)
    while not ends.done:
        if between is not None:
            between(ends)
        for msg in ends.records(reader.consume(batch, timeout)):
            on_record(msg)


def read_to_end(kafka: dict[str, str], topic: str, partitions: list[int] | None = None) -> list[Record]:
    """Every record of ``partitions`` of ``topic`` from the beginning (default: all partitions; none if
    the topic does not exist), in offset order per partition."""
    if partitions is None:
        metadata = AdminClient(kafka).list_topics(topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = sorted(metadata.partitions)
    if not partitions:
        return []
    reader = end_reader(kafka, f"{topic}-reader-{uuid.uuid4().hex[:8]}", **{"fetch.queue.backoff.ms": 10})
    out: list[Record] = []
    try:
        read_until_end(reader, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(set(partitions))],
                       lambda msg: out.append((msg.partition(), msg.key(), msg.value())), timeout=0.5)
    finally:
        reader.close()
    return out
