"""Parking messages that could not be delivered for now, on the adapter's retry topic.

When a receiver is down, slow past the batch budget, or answers 5xx/408/425/429, a message is
not dead-lettered: it is produced, with its original bytes and key, to the retry topic of its
consumer group, ``<prefix>-deliver-<adapter>-retry`` (created by the worker like the messages
topic), with headers saying how many attempts were made, when the first failure was, when the
next attempt may start (exponential backoff, capped) and where the message came from. The
same worker reads that topic too: a record whose time has not come pauses its partition until
then (records are parked in order, so the next one on a partition is rarely due earlier).
Only when the retry window (``delivery_retry_window_seconds``) since the first failure has
passed does a failing message become a dead letter (reason ``delivery_failed``), with the
source partition and offset of the original ``messages`` record.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from plumbing.metadata import metadata
from streams.topics import TopicSpec, ensure_topics

ATTEMPTS = "journey-attempts"
FIRST_FAILED = "journey-first-failed-ms"
NOT_BEFORE = "journey-not-before-ms"
SOURCE = "journey-source"  # "<partition>:<offset>" of the original record on messages
#: Retention of the retry topic: longer than any sensible retry window.
RETENTION_MS = str(7 * 24 * 3600 * 1000)


@dataclass(frozen=True, slots=True)
class Parked:
    attempts: int
    first_failed_ms: int
    not_before_ms: int
    source_partition: int
    source_offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [(ATTEMPTS, str(self.attempts).encode()), (FIRST_FAILED, str(self.first_failed_ms).encode()),
                (NOT_BEFORE, str(self.not_before_ms).encode()),
                (SOURCE, f"{self.source_partition}:{self.source_offset}".encode())]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> Parked | None:
        """The parking of a retry record, or None when its headers are not ours."""
        found = {name: value for name, value in headers or []}
        try:
            partition, offset = found[SOURCE].decode().split(":")
            return cls(int(found[ATTEMPTS]), int(found[FIRST_FAILED]), int(found[NOT_BEFORE]), int(partition),
                       int(offset))
        except (KeyError, ValueError):
            return None


def park_delay(parks: int, backoff: float, cap: float) -> float:
    """Seconds to wait before the attempt after the ``parks``-th parking: ``backoff * 2**(parks-1)``, capped."""
    return min(cap, backoff * 2 ** max(0, parks - 1))


def retry_topic(group_id: str) -> str:
    """The retry topic of a delivery consumer group, e.g. ``journey-deliver-webhook-retry``."""
    return f"{group_id}-retry"


def ensure_retry_topic(kafka_config: dict[str, str], name: str, like: str = "messages") -> None:
    """Create the retry topic ``name`` with as many partitions as ``like`` (keyed by customer like it), if missing."""
    topics = metadata(AdminClient(kafka_config)).topics  # asked again while the broker is slow
    if name in topics:
        return
    partitions = len(topics[like].partitions) if like in topics else 1
    ensure_topics(kafka_config, [TopicSpec(name, partitions, {"retention.ms": RETENTION_MS,
                                                              "retention.bytes": "-1"})])
