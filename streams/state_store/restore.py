"""Open the local stores of newly assigned partitions and bring them up to the changelog's end.

For each partition (``<state_dir>/<changelog>/<partition>``):

- a store with a checkpoint reads the changelog from the checkpoint's offset: the first record
  must be the checkpoint's own (same offset, key and value CRC), or a later one (the checkpoint's
  record was compacted away); then only the records after it are applied. A restart on the same
  disk reads what was written since its last flush, not every customer ever seen.
- a store whose checkpoint is not in the changelog (a record before it comes back, the partition
  ends before it, or the record there differs: the changelog was truncated or recreated), a
  corrupt checkpoint, or data without a checkpoint is discarded and rebuilt from the beginning.
  The partition's end is the high watermark of the fetch responses (the embedded broker's
  ListOffsets answer can be wrong, and it does not answer a fetch beyond its end: DESIGN.md).
- an empty store (a new machine) reads the changelog from its beginning, in bulk: raw bytes
  into WriteBatches, each with its checkpoint.

A timed processor's next timer is stored per key (one unpickle per key and batch read).
Erasure suppression markers are changelog keys like any other: kept in the store, and handed
to the worker's ``Erasures`` after the restore.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from plumbing.produce import CLIENT_LOGGER
from streams.erasure import MARKER, Erasures
from streams.restore_progress import RestoreProgress
from streams.state_store.cached import CachedStore
from streams.state_store.local import Checkpoint, LocalStore, Write

log = logging.getLogger(__name__)
BATCH_RECORDS = 5_000
#: A partition whose fetch at its checkpoint gets no answer for this long is read from its beginning instead,
#: applying only what follows the checkpoint: the embedded broker (Tansu 0.6) was measured never answering a
#: fetch at an offset deep inside a large changelog (250k records a partition), while reading from 0 works.
FIRST_FETCH_SECONDS = 15.0


@dataclass
class Restored:
    stores: dict[int, CachedStore]
    records: int  # changelog records applied (after each store's checkpoint)
    rebuilt: list[int]  # partitions whose store was discarded and read from the changelog's beginning


class _Tail:
    """Reads the changelog tails of several partitions into their local stores."""

    def __init__(self, kafka: dict[str, Any], changelog: str, locals_: dict[int, LocalStore],
                 next_timer: Callable[[Any], int | None] | None, progress: RestoreProgress) -> None:
        self.changelog = changelog
        self.locals = locals_
        self.next_timer = next_timer
        self.progress = progress
        self.reader = Consumer({**kafka, "group.id": f"{changelog}-restore", "enable.auto.commit": False,
                                "enable.partition.eof": True, "auto.offset.reset": "earliest",
                                "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10, "fetch.wait.max.ms": 10})
        self.expect: dict[int, Checkpoint] = {}
        self.buffer: dict[int, list[tuple[str, bytes | None, int]]] = {p: [] for p in locals_}
        self.records = 0
        self.rebuilt: list[int] = []
        self.scanning: set[int] = set()  # read from the beginning up to the checkpoint (not applied)
        self.asked: dict[int, float] = {}  # partition -> when its fetch at the checkpoint was asked (monotonic)

    def run(self) -> None:
        start = []
        for p, local in self.locals.items():
            if local.corrupt or (local.checkpoint is None and not local.empty):
                local.discard("corrupt checkpoint" if local.corrupt else "no checkpoint")
                self.rebuilt.append(p)
            if local.checkpoint is not None:
                self.expect[p] = local.checkpoint
                self.asked[p] = time.monotonic()
                start.append(TopicPartition(self.changelog, p, local.checkpoint.offset))
            else:
                start.append(TopicPartition(self.changelog, p, OFFSET_BEGINNING))
        self.reader.assign(start)
        pending = set(self.locals)
        try:
            while pending:
                rewound: set[int] = set()
                for msg in self.reader.consume(10_000, 0.1):
                    p = msg.partition()
                    if p in rewound:
                        continue  # fetched before the rewind
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            raise RuntimeError(f"restoring {self.changelog}[{p}]: {error.str()}")
                        if p in self.expect:  # the partition ends before its checkpoint's record
                            self._rewind(p, "the changelog ends before its checkpoint")
                            rewound.add(p)
                            continue
                        self._apply(p)
                        pending.discard(p)
                        continue
                    if p in self.scanning and msg.offset() < self.expect[p].offset:
                        self.progress.advance(0)  # moving (for /healthz), nothing to apply: on disk already
                        continue
                    if p in self.expect:
                        checkpoint = self.expect.pop(p)
                        self.scanning.discard(p)
                        if checkpoint.matches(msg.offset(), msg.key(), msg.value()):
                            continue  # already applied: the tail starts after it
                        if msg.offset() <= checkpoint.offset:
                            self._rewind(p, f"changelog record {msg.offset()} is not the checkpoint's "
                                            f"{checkpoint.offset}")
                            rewound.add(p)
                            continue
                    self.progress.advance()
                    buffer = self.buffer[p]
                    buffer.append((msg.key().decode(), msg.value(), msg.offset()))
                    if len(buffer) >= BATCH_RECORDS:
                        self._apply(p)
                self._check_ahead()
                self._check_unanswered()
        finally:
            self.reader.close()

    def _check_ahead(self) -> None:
        """A partition whose fetched end is at or before its checkpoint: the changelog lost what the store has."""
        for p, checkpoint in list(self.expect.items()):
            _, high = self.reader.get_watermark_offsets(TopicPartition(self.changelog, p), cached=True)
            if high >= 0 and high <= checkpoint.offset:
                self._rewind(p, f"the changelog ends at {high}, its checkpoint is {checkpoint.offset}")

    def _check_unanswered(self) -> None:
        """A fetch at a checkpoint without an answer for FIRST_FETCH_SECONDS: read that partition from 0."""
        now = time.monotonic()
        for p in [p for p in self.expect if p not in self.scanning]:
            if now - self.asked[p] >= FIRST_FETCH_SECONDS:
                log.warning("%s[%d]: no answer to a fetch at the checkpoint (offset %d) in %.0fs: reading from the "
                            "beginning, applying only what follows it", self.changelog, p, self.expect[p].offset,
                            FIRST_FETCH_SECONDS)
                self.scanning.add(p)
                self.reader.incremental_unassign([TopicPartition(self.changelog, p)])
                self.reader.incremental_assign([TopicPartition(self.changelog, p, OFFSET_BEGINNING)])

    def _rewind(self, p: int, why: str) -> None:
        self.expect.pop(p, None)
        self.scanning.discard(p)
        self.buffer[p].clear()
        self.locals[p].discard(why)
        self.rebuilt.append(p)
        self.reader.incremental_unassign([TopicPartition(self.changelog, p)])
        self.reader.incremental_assign([TopicPartition(self.changelog, p, OFFSET_BEGINNING)])

    def _apply(self, p: int) -> None:
        """Write the buffered records of ``p`` in one batch, checkpointed at the last of them."""
        buffer = self.buffer[p]
        if not buffer:
            return
        newest: dict[str, bytes | None] = {}
        for key, value, _ in buffer:
            newest[key] = value
        writes: list[Write] = []
        for key, value in newest.items():
            timer = None
            if value is not None and self.next_timer is not None and not key.startswith(MARKER):
                timer = self.next_timer(pickle.loads(value).state)
            writes.append((key, value, timer))
        key, value, offset = buffer[-1]
        self.locals[p].apply(writes, Checkpoint.of(offset, key.encode(), value))
        self.records += len(buffer)
        buffer.clear()


def restore_partitions(kafka: dict[str, Any], changelog: str, partitions: list[int], state_dir: Path,
                       capacity: int, next_timer: Callable[[Any], int | None] | None,
                       progress: RestoreProgress, erasures: Erasures | None) -> Restored:
    """Open (and bring up to date) the local store of each partition; see the module docstring."""
    locals_ = {p: LocalStore(state_dir / changelog / str(p), timed=next_timer is not None) for p in partitions}
    progress.begin(partitions, None)
    tail = _Tail(kafka, changelog, locals_, next_timer, progress)
    try:
        tail.run()
    except BaseException:
        for local in locals_.values():
            local.close()
        raise
    finally:
        progress.end()
    if erasures is not None:
        for p, local in locals_.items():
            for key in local.keys(MARKER):
                erasures.restored(p, key)
    return Restored({p: CachedStore(local, capacity) for p, local in locals_.items()}, tail.records, tail.rebuilt)
