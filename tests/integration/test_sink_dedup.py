"""The sink stores each event id once whatever partition its records landed on, and tells a redelivered
copy from a different event that reuses an id (issue 17, items 8 and 10)."""

from __future__ import annotations

import threading
import uuid
import zlib
from collections import Counter

import orjson
import pytest

from plumbing.partitioner import partition_for
from plumbing.produce import TrackingProducer
from sinks.client import apply_schema
from sinks.ingest import SinkConfig
from streams.progress import GroupProgress
from tests.conftest import Backend, reset_clickhouse, sink_until_caught_up
from tests.integration.test_large_dead_letters import read_letters
from tests.integration.test_redelivery import CrashBeforeCommit

pytestmark = pytest.mark.integration

Record = tuple[bytes | None, bytes]


def event(i: int, customer: str, **extra: object) -> bytes:
    return orjson.dumps({"event_id": f"e{i}", "customer_id": customer, "event_time": "2024-05-01T10:00:00Z",
                         "type": "product_view", "product_id": f"p{i % 7}", **extra})


def send(backend: Backend, records: list[Record], partitioner: str = "murmur2_random") -> dict[tuple[str, int], int]:
    """Produce ``records`` to clickstream with ``partitioner``; the end offsets acknowledged."""
    producer = TrackingProducer(backend.kafka, partitioner=partitioner)
    for key, value in records:
        producer.send_raw("clickstream", key, value)
    producer.flush()
    return producer.end_offsets


def crash_before_commit(backend: Backend, group: str) -> int:
    """Run a sink that inserts its first batch and dies before committing it; the rows it inserted."""
    client = backend.client()
    apply_schema(client)
    sink = CrashBeforeCommit(backend.kafka, client, SinkConfig(group_id=group, batch_rows=100_000, batch_seconds=1.0))
    failure: list[BaseException] = []

    def work() -> None:
        try:
            sink.run(threading.Event())
        except BaseException as exc:  # the injected crash
            failure.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert failure and "injected crash" in str(failure[0])
    return int(client.query("SELECT count() FROM clickstream_events").result_rows[0][0])


def letters(client: object) -> tuple[int, int, list[str]]:
    """Rows, distinct ids and the reasons of the ``dead_letters`` table."""
    rows, ids = client.query("SELECT count(), uniqExact(dead_letter_id) FROM dead_letters").result_rows[0]  # type: ignore[attr-defined]
    reasons = [r for (r,) in client.query("SELECT DISTINCT reason FROM dead_letters").result_rows]  # type: ignore[attr-defined]
    return int(rows), int(ids), sorted(reasons)


def test_crc32_placed_records_stored_once_and_keyless_ones_one_missing_key_letter_each(backend: Backend) -> None:
    """crc32-placed (keyed) records are stored once after redelivery and resend; a keyless record is refused
    as ``missing_key`` (the contract: the key is the customer id), one letter per record however often it comes
    (the letter id is made of topic, key and bytes, so a redelivered or resent copy is the same letter)."""
    n = backend.partitions
    customers = [f"cust{i}" for i in range(40)]
    # crc32-placed records (librdkafka's default partitioner) of customers it puts elsewhere than murmur2 does
    misplaced = [c for c in customers if zlib.crc32(c.encode()) % n != partition_for(c.encode(), n)]
    assert len(misplaced) >= 10
    keyed = [(c.encode(), event(i, c)) for i, c in enumerate(misplaced * 5)]
    keyless = [(None, event(1000 + i, customers[i % 40])) for i in range(200)]
    client = backend.client()
    reset_clickhouse(client)
    group = f"dd-{uuid.uuid4().hex[:6]}"
    ends = send(backend, keyed, "consistent_random")
    ends.update(send(backend, keyless))
    total = len(keyed) + len(keyless)

    # Redelivery: inserted, not committed, consumed again by a fresh worker of the group.
    stored_before = crash_before_commit(backend, group)
    letters_before = letters(client)[0]
    assert stored_before + letters_before > 0 and GroupProgress(backend.kafka, group).remaining(ends) == total
    stats = sink_until_caught_up(backend, client, ends, group=group)
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (
        len(keyed), len(keyed))
    assert stats.duplicates["clickstream"] == stored_before
    assert stats.duplicates["dead-letters"] == letters_before
    assert letters(client) == (len(keyless), len(keyless), ["missing_key"])

    # Resend: keyless ones land on other partitions at random, crc32 ones on the same, and the same
    # crc32-placed records sent again by Kafka's murmur2 partitioner land on their customer's partition.
    ends = {**ends, **send(backend, keyed + keyless), **send(backend, keyed, "consistent_random")}
    ends.update(send(backend, keyed))
    stats = sink_until_caught_up(backend, client, ends, group=group)
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (
        len(keyed), len(keyed))
    assert stats.duplicates["clickstream"] == 3 * len(keyed)
    assert stats.duplicates["dead-letters"] == len(keyless)
    assert client.query("SELECT sum(events) FROM events_per_minute").result_rows[0][0] == len(keyed)
    assert letters(client) == (len(keyless), len(keyless), ["missing_key"])
    on_topic = Counter(d["reason"] for d, _ in read_letters(backend.kafka, backend.partitions))
    assert on_topic == {"missing_key": len(keyless)}


def test_one_running_worker_stores_copies_it_reads_on_different_partitions_once(backend: Backend) -> None:
    """Both copies reach one worker before either is stored: caught in memory, not by the stored ids. The
    keyless copies are refused as ``missing_key``: one letter per distinct record, the second copy skipped."""
    client = backend.client()
    reset_clickhouse(client)
    keyless = [(None, event(i, f"cust{i % 30}")) for i in range(300)]
    keyed = [(f"cust{i % 30}".encode(), v) for i, (_, v) in enumerate(keyless)]
    ends = send(backend, keyless)
    ends.update(send(backend, keyless))
    ends.update(send(backend, keyed, "consistent_random"))
    ends.update(send(backend, keyed))
    stats = sink_until_caught_up(backend, client, ends, batch_rows=100, min_batch_rows=50)
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (300, 300)
    assert stats.duplicates["clickstream"] == 300
    assert stats.dead_letters == {"missing_key": 300}
    assert stats.duplicates["dead-letters"] == 300
    assert letters(client) == (300, 300, ["missing_key"])


def test_same_event_id_with_other_content_is_a_conflicting_duplicate_dead_letter(backend: Backend) -> None:
    client = backend.client()
    reset_clickhouse(client)
    group = f"cd-{uuid.uuid4().hex[:6]}"
    first, other, third = event(1, "c1"), event(1, "c1", product_id="p-other"), event(1, "c1", product_id="p-3")
    ends = send(backend, [(b"c1", first), (b"c1", first), (b"c1", other), (b"c1", event(2, "c1"))])
    stats = sink_until_caught_up(backend, client, ends, group=group)
    assert client.query("SELECT event_id, product_id FROM clickstream_events ORDER BY event_id").result_rows == [
        ("e1", "p1"), ("e2", "p2")]
    assert stats.duplicates["clickstream"] == 1  # the exact copy: skipped, counted
    assert stats.dead_letters == {"conflicting_duplicate": 1}
    rows = client.query("SELECT reason, original, source_offset FROM dead_letters").result_rows
    assert [(r, o if isinstance(o, bytes) else o.encode()) for r, o, _ in rows] == [("conflicting_duplicate", other)]

    # After a restart the stored content is known from ClickHouse: an exact copy is skipped, another differs.
    ends = {**ends, **send(backend, [(b"c1", first), (b"c1", third), (b"c1", other)])}
    stats = sink_until_caught_up(backend, client, ends, group=group)
    assert stats.duplicates["clickstream"] == 1
    assert stats.duplicates["dead-letters"] == 1, "the same conflicting record again is the same dead letter"
    assert stats.dead_letters == {"conflicting_duplicate": 1}
    assert client.query("SELECT count() FROM clickstream_events").result_rows[0][0] == 2
    originals = sorted(o if isinstance(o, bytes) else o.encode()
                       for (o,) in client.query("SELECT original FROM dead_letters").result_rows)
    assert originals == sorted([other, third])
    assert sorted(d["reason"] for d, _ in read_letters(backend.kafka, backend.partitions)) == [
        "conflicting_duplicate"] * 2
