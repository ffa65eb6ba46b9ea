"""A partition's states as the worker sees them: a mapping of key -> Entry over a LocalStore.

The worker reads and writes ``store.get(key)`` / ``store[key] = entry`` as it did with a dict.
Behind it, three layers, the newest first:

1. the cache: up to ``capacity`` live ``Entry`` objects, least recently used evicted first;
2. the pending writes: the changelog bytes of flushes the broker has not acknowledged yet (not
   on disk yet: the disk holds only what the changelog holds); a tombstone pending is ``None``;
3. the local store (RocksDB).

Eviction happens only in :meth:`trim`, which the worker calls at the end of a flush, when no
key has changes unwritten: an evicted entry's newest bytes are then in layer 2 or 3, so loading
it again gives the same state. Between flushes the cache may hold more than ``capacity``: the
keys touched since the last flush.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from streams.erasure import MARKER
from streams.state_store.local import LocalStore


class CachedStore(MutableMapping[str, Any]):
    """Key -> Entry of one partition, an LRU cache of live entries over its local store."""

    def __init__(self, local: LocalStore, capacity: int) -> None:
        self.local = local
        self.capacity = capacity
        self.cache: OrderedDict[str, Any] = OrderedDict()
        self.pending: dict[str, bytes | None] = {}  # key -> newest changelog bytes not on disk yet (None: deleted)
        self.loads = 0  # entries read back from pending bytes or the disk (cache misses that found a state)

    def get(self, key: str, default: Any = None) -> Any:
        cache = self.cache
        entry = cache.get(key)
        if entry is not None:
            cache.move_to_end(key)
            return entry
        raw = self.pending[key] if key in self.pending else self.local.get(key)
        if raw is None or key.startswith(MARKER):
            return default
        entry = cache[key] = pickle.loads(raw)
        self.loads += 1
        return entry

    def __getitem__(self, key: str) -> Any:
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry

    def __setitem__(self, key: str, entry: Any) -> None:
        self.cache[key] = entry
        self.cache.move_to_end(key)

    def __delitem__(self, key: str) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        del self.cache[key]
        self.pending[key] = None  # gone now; the tombstone the worker writes makes it gone on disk

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        """Every key with a state (reads the keys on disk: for rare work such as an erasure)."""
        for key, _ in self._walk(load=False):
            yield key

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """Every (key, entry), without filling the cache: an entry not cached is a fresh copy (read it only)."""
        return self._walk(load=True)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for _, entry in self._walk(load=True):
            yield entry

    def _walk(self, load: bool) -> Iterator[tuple[str, Any]]:
        """The cache, then the pending writes, then the disk, each key once (the newest layer wins)."""
        cached, pending = list(self.cache.items()), list(self.pending.items())
        yield from cached
        seen = {key for key, _ in cached}
        for key, raw in pending:
            seen.add(key)
            if raw is not None and not key.startswith(MARKER):
                yield key, pickle.loads(raw) if load else None
        for key, raw in self.local.items():
            if key not in seen and not key.startswith(MARKER):
                yield key, pickle.loads(raw) if load else None

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def noted(self, key: str, value: bytes | None) -> None:
        """A flush produced ``value`` for ``key`` to the changelog: it is the key's newest bytes until on disk."""
        self.pending[key] = value

    def stored(self, key: str, value: bytes | None) -> None:
        """``value`` is on disk now; forget it unless a later flush wrote the key again."""
        if key in self.pending and self.pending[key] is value:
            del self.pending[key]

    def trim(self) -> int:
        """Evict the least recently used entries beyond ``capacity`` (no unwritten changes: see the docstring)."""
        cache, evicted = self.cache, 0
        while len(cache) > self.capacity:
            cache.popitem(last=False)
            evicted += 1
        return evicted

    def deadlines(self) -> Iterator[tuple[str, int]]:
        return self.local.deadlines()

    def close(self) -> None:
        self.cache.clear()
        self.pending.clear()
        self.local.close()


def deadlines(store: Mapping[str, Any], next_timer: Callable[[Any], int | None]) -> Iterator[tuple[str, int | None]]:
    """Each key's next timer: stored beside the state on disk, computed from the state in memory."""
    if isinstance(store, CachedStore):
        yield from store.deadlines()
    else:
        for key, entry in store.items():
            yield key, next_timer(entry.state)
