"""Cluster metadata from a consumer or an admin client, asked again while the broker is too slow to answer."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException

from plumbing.waiting import REQUEST_SECONDS, retry_until_stalled


def metadata(client: Any, topic: str | None = None) -> Any:
    """``client.list_topics(topic)`` (a consumer's or an admin client's), asked again while the broker is
    too slow to answer one request, until the stall time (the ``stall_seconds`` setting)."""
    return retry_until_stalled(f"metadata of {topic or 'the cluster'}",
                               lambda: client.list_topics(topic, timeout=REQUEST_SECONDS), (KafkaException,))
