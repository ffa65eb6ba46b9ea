"""What every source yields: a record ready to produce, with its event time for pacing and sorting."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.registry import TOPIC_OF_TYPE


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    key: bytes
    value: bytes
    event_time: datetime | None  # None when the source could not read it (the record still goes out)


def derive_event_id(source: str, content: bytes, occurrence: int = 0) -> str:
    """A stable id from the source, the row's raw content and which repeat of that content it is.

    Two identical rows are two events; replaying the same file twice gives the same ids.
    """
    digest = hashlib.blake2b(content, digest_size=16, person=b"journey-replay")
    digest.update(source.encode())
    digest.update(occurrence.to_bytes(8, "big"))
    return f"{source}-{digest.hexdigest()}"


def record_of(event: Any) -> SourceRecord:
    """A validated contract instance as a record on its topic, keyed by its customer."""
    return SourceRecord(TOPIC_OF_TYPE[event.type], event.customer_id.encode(),
                        event.__pydantic_serializer__.to_json(event, exclude_none=True), event.event_time)


class Occurrences:
    """Counts repeats of identical raw rows, for :func:`derive_event_id`."""

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def next(self, content: bytes) -> int:
        n = self._seen.get(content, 0)
        self._seen[content] = n + 1
        return n
