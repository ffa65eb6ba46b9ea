"""The disk-backed state store (streams/state_store/) with a real broker and the features processor.

- A restart on the same disk reads only the changelog written since its last flush (exact counts),
  a worker on an empty disk reads all of it, and each store then holds exactly what the changelog
  holds (the last value of every key).
- A cache of 10 customers (hundreds evicted and read back) gives the profiles of the pandas reference.
- A corrupt checkpoint, one ahead of the changelog, and one naming a different record are discarded
  and rebuilt from the changelog.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.sentiment import sentiment
from streams.sources import open_source
from streams.state_store.local import CHECKPOINT, Checkpoint, LocalStore
from streams.topic_reader import read_to_end
from streams.topics import CHANGELOGS
from tests.conftest import Backend, produce
from tests.integration.test_features_exact import newest_event_ms, run_features
from tests.integration.test_scoring_pipeline import read_all
from tests.processors.features.compare import differences, flat
from tests.processors.features.reference import olist_features, taobao_features

pytestmark = pytest.mark.integration
CHANGELOG = CHANGELOGS["features"]


def changelog_state(backend: Backend) -> dict[int, dict[str, bytes]]:
    """The last value of every key of each changelog partition (a tombstone removes it), read independently."""
    state: dict[int, dict[str, bytes]] = {p: {} for p in range(backend.partitions)}
    for partition, key, value in read_to_end(backend.kafka, CHANGELOG):
        assert key is not None
        if value is None:
            state[partition].pop(key.decode(), None)
        else:
            state[partition][key.decode()] = value
    return state


def disk_state(state_dir: Path, partitions: int) -> dict[int, dict[str, bytes]]:
    """What the local stores under ``state_dir`` hold (the workers have closed them)."""
    out = {}
    for p in range(partitions):
        store = LocalStore(state_dir / CHANGELOG / str(p), timed=True)
        try:
            out[p] = dict(store.items())
        finally:
            store.close()
    return out


def changelog_counts(backend: Backend) -> dict[int, int]:
    counts = dict.fromkeys(range(backend.partitions), 0)
    for partition, _, _ in read_to_end(backend.kafka, CHANGELOG):
        counts[partition] += 1
    return counts


def test_a_restart_on_the_same_disk_reads_only_the_changelog_tail_and_an_empty_disk_reads_it_all(
        backend: Backend, datasets: Path, tmp_path: Path) -> None:
    records, _ = open_source(f"taobao:{datasets / 'taobao_userbehavior_sample.csv'}")
    half = len(records) // 2
    first = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records[:half]])
    one, two, three = tmp_path / "one", tmp_path / "two", tmp_path / "three"

    a = run_features(backend, first.end_offsets, group="disk", state_dir=one)
    assert a.stats.restore_records_read == 0 and a.stats.changelog_records > 500
    assert disk_state(one, backend.partitions) == changelog_state(backend), "the store holds the changelog"

    second = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records[half:]])
    b = run_features(backend, second.end_offsets, group="disk", state_dir=two)  # another machine: empty disk
    assert b.stats.restore_records_read == a.stats.changelog_records, "an empty disk reads the whole changelog"
    assert b.stats.changelog_records > 0

    c = run_features(backend, second.end_offsets, group="disk", state_dir=one)  # back on the first disk
    assert c.stats.restore_records_read == b.stats.changelog_records, "the same disk reads only what b wrote"
    assert c.stats.consumed == 0 and c.stats.changelog_records == 0
    d = run_features(backend, second.end_offsets, group="disk", state_dir=one)
    assert d.stats.restore_records_read == 0, "after a clean stop nothing is left to read"
    e = run_features(backend, second.end_offsets, group="disk", state_dir=three)
    assert e.stats.restore_records_read == a.stats.changelog_records + b.stats.changelog_records
    expected = changelog_state(backend)
    assert disk_state(one, backend.partitions) == expected
    assert disk_state(three, backend.partitions) == expected
    assert sum(map(len, expected.values())) == len({r.key for r in records}) == 814, "one state per customer"


def test_a_cache_of_ten_customers_gives_the_profiles_of_the_batch_computation(
        backend: Backend, datasets: Path, tmp_path: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    olist_records, _ = open_source(f"olist:{datasets / 'olist'}")  # months of orders: stage timers fire
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in [*records, *olist_records]])
    end = newest_event_ms([*records, *olist_records])
    worker = run_features(backend, producer.end_offsets, group="tiny-cache", watermark_ms=end,
                          state_dir=tmp_path, state_cache_customers=10)
    assert worker.stats.state_evicted > 8000, "customers went out of the cache and came back from disk"
    assert worker.stats.timer_firings > 5000, "timers fire on states read back from disk"
    streamed = {record["customer_id"]: flat(record)
                for record in read_all(backend.kafka, "customer-features", backend.partitions)}  # last one wins
    taobao = taobao_features(path, watermark_ms=end)
    olist = olist_features(datasets / "olist", watermark_ms=end, sentiment=sentiment)
    assert len(taobao) == 814 and len(olist) > 7000
    assert sorted(streamed) == sorted([*taobao.index, *olist.index]), "one profile per customer"
    for name, expected in (("Taobao", taobao), ("Olist", olist)):
        mismatches = differences({c: streamed[c] for c in expected.index}, expected)
        assert not mismatches, f"{name}: {len(mismatches)} differences, first: {mismatches[:5]}"


def test_a_corrupt_or_ahead_checkpoint_is_discarded_and_rebuilt(backend: Backend, datasets: Path,
                                                                  tmp_path: Path) -> None:
    records, _ = open_source(f"taobao:{datasets / 'taobao_userbehavior_sample.csv'}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records[:3000]])
    run_features(backend, producer.end_offsets, group="broken", state_dir=tmp_path)
    assert backend.partitions >= 4
    damage = {0: b"{not json", 1: Checkpoint(10**9, b"k", 0).encode()}
    for p in (0, 1, 2):
        store = LocalStore(tmp_path / CHANGELOG / str(p), timed=True)
        assert store.checkpoint is not None
        if p == 2:  # the record at the checkpoint's offset is another one (a changelog recreated and refilled)
            damage[p] = Checkpoint(store.checkpoint.offset, store.checkpoint.key, store.checkpoint.crc + 1).encode()
        store._db.put(CHECKPOINT, damage[p])
        store.close()
    again = run_features(backend, producer.end_offsets, group="broken", state_dir=tmp_path)
    counts = changelog_counts(backend)
    assert again.stats.stores_rebuilt == 3
    assert again.stats.restore_records_read == counts[0] + counts[1] + counts[2], "partition 3 read nothing"
    assert disk_state(tmp_path, backend.partitions) == changelog_state(backend)
