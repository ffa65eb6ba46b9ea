"""CachedStore and PendingFlushes over a real RocksDB: eviction never loses a change, layers in order."""

from __future__ import annotations

import pickle
from pathlib import Path

from streams.erasure import MARKER
from streams.state_store.cached import CachedStore
from streams.state_store.local import Checkpoint, LocalStore
from streams.state_store.pending import PendingFlushes
from streams.stateful import Entry


def store(tmp_path: Path, capacity: int = 2) -> CachedStore:
    return CachedStore(LocalStore(tmp_path / "p0", timed=True), capacity)


def flush(pending: PendingFlushes, cached: CachedStore, keys: list[str], sequence: int) -> list:
    """Write ``keys`` as one flush (what StatefulWorker._write does); return the acknowledgement callbacks."""
    acks = [pending.note(cached, 0, key, pickle.dumps(cached[key]), len(key)) for key in keys]
    pending.close(sequence)
    return acks


def test_an_evicted_state_comes_back_from_pending_bytes_then_from_disk(tmp_path: Path) -> None:
    cached, pending = store(tmp_path), PendingFlushes()
    for i in range(5):
        cached[f"k{i}"] = Entry({"n": i}, {"clickstream": i})
    acks = flush(pending, cached, [f"k{i}" for i in range(5)], sequence=5)
    assert cached.trim() == 3 and list(cached.cache) == ["k3", "k4"]
    assert cached["k0"].state == {"n": 0} and cached.loads == 1, "read back from the flush not yet on disk"
    assert cached.local.get("k0") is None, "not on disk before the broker acknowledged it"
    for offset, ack in enumerate(acks):
        ack(100 + offset)
    assert pending.apply(oldest_unacknowledged=6, stores={0: cached}) == 1
    assert not cached.pending and cached.local.checkpoint == Checkpoint.of(104, b"k4", pickle.dumps(cached["k4"]))
    cached.cache.clear()
    assert cached["k1"].state == {"n": 1}, "from disk"
    assert dict(cached.local.deadlines()) == {f"k{i}": 2 for i in range(5)}


def test_a_flush_waits_for_every_earlier_record_and_a_later_write_wins(tmp_path: Path) -> None:
    cached, pending = store(tmp_path, capacity=10), PendingFlushes()
    cached["a"] = Entry({"v": 1})
    (first,) = flush(pending, cached, ["a"], sequence=1)
    cached["a"].state["v"] = 2
    (second,) = flush(pending, cached, ["a"], sequence=2)
    second(11)
    assert pending.apply(oldest_unacknowledged=1, stores={0: cached}) == 0, "the first flush is not acknowledged"
    first(10)
    assert pending.apply(oldest_unacknowledged=3, stores={0: cached}) == 2
    assert pickle.loads(cached.local.get("a")).state == {"v": 2} and cached.local.checkpoint.offset == 11


def test_deleted_keys_and_markers_are_not_states(tmp_path: Path) -> None:
    cached, pending = store(tmp_path, capacity=10), PendingFlushes()
    cached["a"], cached["b"] = Entry({"v": 1}), Entry({"v": 2})
    for ack in flush(pending, cached, ["a", "b"], sequence=2):
        ack(0)
    pending.apply(3, {0: cached})
    cached.cache.clear()
    del cached["a"]
    assert cached.get("a") is None and "a" not in cached, "gone before its tombstone is on disk"
    cached.local.apply([(MARKER + "subject", b"1", None)], Checkpoint.of(5, b"m", b"1"))
    assert sorted(cached) == ["b"] and [e.state for e in cached.values()] == [{"v": 2}]
    assert not cached.cache, "walking the store does not fill the cache"
    assert list(cached.local.keys(MARKER)) == [MARKER + "subject"]


def test_a_store_reopens_with_its_checkpoint_and_an_unreadable_one_is_flagged(tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "p0", timed=False)
    local.apply([("k", b"v", None)], Checkpoint.of(7, b"k", b"v"))
    local.close()
    again = LocalStore(tmp_path / "p0", timed=False)
    assert again.checkpoint == Checkpoint.of(7, b"k", b"v") and again.get("k") == b"v" and again.count() == 1
    again._db.put(b"m", b"garbage")
    again.close()
    broken = LocalStore(tmp_path / "p0", timed=False)
    assert broken.corrupt and broken.checkpoint is None
    broken.discard("test")
    assert broken.empty and broken.get("k") is None
    broken.close()


def test_an_erased_state_leaves_no_bytes_in_the_store_files(tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "p0", timed=False)
    secret = b"personal-data-of-customer-4711"

    def files_holding_it() -> list[str]:
        return [f.name for f in (tmp_path / "p0").iterdir() if f.is_file() and secret in f.read_bytes()]

    local.apply([("c-4711", secret, None), *((f"c-{i}", bytes(100), None) for i in range(500))],
                Checkpoint.of(1, b"c-4711", secret))
    local._db.flush()
    assert files_holding_it(), "the state is in a table file"
    local.apply([("c-4711", None, None)], Checkpoint.of(2, b"c-4711", None))  # the erasure's tombstone
    assert local.get("c-4711") is None and files_holding_it() == []
    local.close()
    assert files_holding_it() == []
