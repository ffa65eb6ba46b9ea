"""Flushes whose changelog records are not all acknowledged yet, applied to the local stores in order.

The local store may only hold what the changelog holds, so a flush's states go to disk once the
broker has acknowledged every record produced up to the end of that flush (the same rule that
commits the input offsets, streams/stateful.py). Each changelog record's delivery report gives
its offset: the flush's checkpoint for a partition is its highest acknowledged changelog offset,
written in the same WriteBatch as the states (streams/state_store/local.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from streams.state_store.cached import CachedStore
from streams.state_store.local import Checkpoint, Write


@dataclass
class Flush:
    last_sequence: int = 0  # the worker's produce sequence number at the flush's end
    writes: dict[int, list[Write]] = field(default_factory=dict)
    reached: dict[int, Checkpoint] = field(default_factory=dict)  # partition -> highest acknowledged record


class PendingFlushes:
    """The changelog writes of the flush being made and of those waiting for acknowledgement."""

    def __init__(self) -> None:
        self.current = Flush()
        self.waiting: deque[Flush] = deque()

    def note(self, store: CachedStore, partition: int, key: str, value: bytes | None,
             timer: int | None) -> Callable[[int], None]:
        """Record one changelog write of the current flush; returns what to call with its offset once acknowledged."""
        flush = self.current
        flush.writes.setdefault(partition, []).append((key, value, timer))
        store.noted(key, value)
        raw_key = key.encode()

        def acknowledged(offset: int) -> None:
            reached = flush.reached.get(partition)
            if reached is None or offset > reached.offset:
                flush.reached[partition] = Checkpoint.of(offset, raw_key, value)

        return acknowledged

    def close(self, last_sequence: int) -> None:
        """The current flush is complete: it waits for its acknowledgements from now on."""
        if self.current.writes:
            self.current.last_sequence = last_sequence
            self.waiting.append(self.current)
            self.current = Flush()

    def apply(self, oldest_unacknowledged: int, stores: Mapping[int, object]) -> int:
        """Write to disk, in flush order, the flushes whose records are all acknowledged; how many."""
        applied = 0
        while self.waiting and self.waiting[0].last_sequence < oldest_unacknowledged:
            flush = self.waiting.popleft()
            for partition, writes in flush.writes.items():
                store = stores.get(partition)
                if not isinstance(store, CachedStore):  # revoked since: its next owner replays the changelog
                    continue
                store.local.apply(writes, flush.reached[partition])
                for key, value, _ in writes:
                    store.stored(key, value)
            applied += 1
        return applied

    def drop(self, partition: int) -> None:
        """Forget a revoked partition's writes (a revocation flushes first, so none should remain)."""
        for flush in (self.current, *self.waiting):
            flush.writes.pop(partition, None)
            flush.reached.pop(partition, None)
