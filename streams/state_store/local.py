"""One partition's local state on disk: a RocksDB (rocksdict) holding what the changelog holds.

Keys, one RocksDB per (changelog, partition):

- ``s`` + key: the changelog value of the key (the pickled ``Entry``, the same bytes the
  changelog record carries; a suppression marker's ``b"1"``). A tombstone deletes it.
- ``t`` + key: the key's next timer (8 bytes, big-endian, signed ms), for a timed processor, so
  a reopened store arms its timers without unpickling every state.
- ``m``: the checkpoint, the changelog record applied last (offset, key, CRC of its value).

Every write (:meth:`LocalStore.apply`) is one ``WriteBatch`` holding the states *and* the
checkpoint they reach: after a crash the store is at some flush's end, never between, so
"replay the changelog after the checkpoint" restores exactly the changelog's state.

Two processes of one role on one data dir (``journey run`` with two workers) may both want a
partition during a rebalance; RocksDB lets one process open a directory. A store that stays
locked (``LOCK_WAIT_SECONDS``) is opened in a private directory beside it instead (restored
from the changelog in full, removed at close).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from rocksdict import Options, Rdict, WriteBatch

log = logging.getLogger(__name__)

STATE, TIMER, CHECKPOINT = b"s", b"t", b"m"
LOCK_WAIT_SECONDS = 10.0
_TIMER = struct.Struct(">q")

#: (key, changelog value or None for a tombstone, next timer or None) as one flush wrote it.
Write = tuple[str, bytes | None, int | None]


@dataclass(frozen=True)
class Checkpoint:
    """The changelog record a store has applied last: its offset, and what it held (to recognise it)."""

    offset: int
    key: bytes
    crc: int

    @classmethod
    def of(cls, offset: int, key: bytes, value: bytes | None) -> Checkpoint:
        return cls(offset, key, zlib.crc32(value or b""))

    def matches(self, offset: int, key: bytes | None, value: bytes | None) -> bool:
        return offset == self.offset and (key or b"") == self.key and zlib.crc32(value or b"") == self.crc

    def encode(self) -> bytes:
        return orjson.dumps({"offset": self.offset, "key": self.key.hex(), "crc": self.crc})

    @classmethod
    def decode(cls, raw: bytes) -> Checkpoint:
        saved = orjson.loads(raw)
        return cls(int(saved["offset"]), bytes.fromhex(saved["key"]), int(saved["crc"]))


#: RocksDB's memtable per store (and at most two of them): its 64 MB default took about 90 MB resident per
#: partition once written to (measured: 4 partitions, 250k x 900 B each: 202 MB against 84 MB with 8 MB).
WRITE_BUFFER_BYTES = 8 << 20


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    return options


class LocalStore:
    """The RocksDB of one changelog partition (see the module docstring for its layout)."""

    def __init__(self, path: Path, timed: bool) -> None:
        self.path = path
        self.timed = timed
        self.private = False
        self._db = self._open()
        self.checkpoint, self.corrupt = self._read_checkpoint()

    def _open(self) -> Rdict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return Rdict(str(self.path), _options())
            except Exception as exc:  # rocksdict raises a bare Exception with RocksDB's message
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        self.path = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        self.private = True
        log.warning("state store %s is held by another process: using a private copy %s", self.path.parent,
                    self.path)
        shutil.rmtree(self.path, ignore_errors=True)
        return Rdict(str(self.path), _options())

    def _read_checkpoint(self) -> tuple[Checkpoint | None, bool]:
        raw = self._db.get(CHECKPOINT)
        if raw is None:
            return None, False
        try:
            return Checkpoint.decode(raw), False
        except (ValueError, KeyError, TypeError):
            return None, True

    @property
    def empty(self) -> bool:
        return self.checkpoint is None and not self.corrupt and self._first(b"") is None

    def _first(self, prefix: bytes) -> bytes | None:
        it = self._db.iter()
        it.seek(prefix)
        return it.key() if it.valid() and it.key().startswith(prefix) else None

    def get(self, key: str) -> bytes | None:
        return self._db.get(STATE + key.encode())

    def apply(self, writes: Iterable[Write], checkpoint: Checkpoint) -> None:
        """Write ``writes`` (in order: the last one of a key wins) and ``checkpoint`` atomically."""
        batch = WriteBatch(raw_mode=True)
        timed = self.timed
        deleted = []
        for key, value, timer in writes:
            raw = key.encode()
            if value is None:
                batch.delete(STATE + raw)
                deleted.append(STATE + raw)
            else:
                batch.put(STATE + raw, value)
            if timed:
                if timer is None:
                    batch.delete(TIMER + raw)
                else:
                    batch.put(TIMER + raw, _TIMER.pack(timer))
        batch.put(CHECKPOINT, checkpoint.encode())
        self._db.write(batch)
        self.checkpoint = checkpoint
        self.corrupt = False
        if deleted:
            self._purge(deleted)

    def _purge(self, keys: list[bytes]) -> None:
        """Make deleted states (erasures) unreadable on disk too, not only to ``get``.

        A RocksDB delete is a tombstone: the old value stays in the write-ahead log and the table
        files until a compaction drops it. Flushing the memtable and compacting the keys' range
        rewrites the files without it (measured: the value's bytes are gone from every file).
        """
        self._db.flush()
        for key in keys:
            self._db.compact_range(key, key + b"\xff")

    def _scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                return
            yield key, it.value()
            it.next()

    def deadlines(self) -> Iterator[tuple[str, int]]:
        """Every key's stored next timer."""
        for raw, value in self._scan(TIMER):
            yield raw[1:].decode(), _TIMER.unpack(value)[0]

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The keys holding a value (states and markers) that start with ``prefix``."""
        for raw, _ in self._scan(STATE + prefix.encode()):
            yield raw[1:].decode()

    def count(self) -> int:
        """How many states (and suppression markers) the store holds: a scan of the keys (about 1 s per million)."""
        it, n = self._db.iter(), 0
        it.seek(STATE)
        while it.valid() and it.key().startswith(STATE):
            n += 1
            it.next()
        return n

    def items(self) -> Iterator[tuple[str, bytes]]:
        for raw, value in self._scan(STATE):
            yield raw[1:].decode(), value

    def discard(self, why: str) -> None:
        """Drop everything (the changelog will be read from its beginning instead)."""
        log.warning("state store %s discarded (%s): restoring it from the changelog", self.path, why)
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = Rdict(str(self.path), _options())
        self.checkpoint, self.corrupt = None, False

    def close(self) -> None:
        self._db.close()
        if self.private:
            shutil.rmtree(self.path, ignore_errors=True)
