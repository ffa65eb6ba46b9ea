"""A sink that dies after inserting but before committing stores nothing twice when the batch comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import TopicPartition

from sinks.ingest import IngestSink, SinkConfig
from streams.progress import GroupProgress
from tests.conftest import Backend, produce, sink_until_caught_up

pytestmark = pytest.mark.integration


def events(n: int, customers: int = 50) -> list[tuple[str, bytes | None, bytes | None]]:
    out = []
    for i in range(n):
        customer = f"c{i % customers}"
        body = {"event_id": f"e{i}", "customer_id": customer, "event_time": f"2024-05-01T10:{i % 60:02d}:00Z",
                "type": "product_view", "product_id": f"p{i % 7}"}
        out.append(("clickstream", customer.encode(), orjson.dumps(body)))
    return out


class CrashBeforeCommit(IngestSink):
    """The real sink, made to die at the worst moment: rows inserted, offsets not committed."""

    def commit(self, offsets: list[TopicPartition]) -> None:
        raise RuntimeError("injected crash between insert and commit")


def test_batch_inserted_but_not_committed_is_not_stored_twice(backend: Backend) -> None:
    records = events(5000)
    producer = produce(backend.kafka, records)
    client = backend.client()
    from tests.conftest import reset_clickhouse

    reset_clickhouse(client)
    crashing = CrashBeforeCommit(backend.kafka, client, SinkConfig(group_id="g", batch_rows=100_000,
                                                                    batch_seconds=0.5))
    stop = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            crashing.run(stop)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert failure and "injected crash" in str(failure[0])
    stored_before = client.query("SELECT count() FROM clickstream_events").result_rows[0][0]
    assert stored_before > 0, "the crash came after an insert"
    assert GroupProgress(backend.kafka, "g").remaining(producer.end_offsets) == len(records), "nothing committed"

    stats = sink_until_caught_up(backend, client, producer.end_offsets, group="g")
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (5000, 5000)
    assert client.query("SELECT sum(events) FROM events_per_minute").result_rows[0][0] == 5000
    assert stats.duplicates["clickstream"] == stored_before


def test_replaying_the_same_records_twice_stores_them_once(backend: Backend) -> None:
    records = events(3000)
    producer = produce(backend.kafka, records + records)
    client = backend.client()
    stats = sink_until_caught_up(backend, client, producer.end_offsets)
    assert client.query("SELECT count() FROM clickstream_events").result_rows[0][0] == 3000
    assert stats.duplicates["clickstream"] == 3000


def test_sink_worker_sigkill(backend: Backend, tmp_path: Path) -> None:
    """A real `journey sink` process SIGKILLed while working through a backlog, then restarted."""
    n = 60_000
    producer = produce(backend.kafka, events(n, customers=997))
    # chDB: one process per data path, and this test process holds the session's; the workers get their own.
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    env = {**os.environ, "JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"],
           "JOURNEY_CLICKHOUSE_DSN": dsn, "JOURNEY_SINK_BATCH_ROWS": "2000",
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "killtest"}
    progress = GroupProgress(backend.kafka, "killtest-sink")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "sink"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = start()
    deadline = time.monotonic() + 90
    while progress.remaining(producer.end_offsets) > n * 0.7 and time.monotonic() < deadline:
        assert first.poll() is None, "the sink died on its own"
        time.sleep(0.05)
    assert first.poll() is None, "the sink died on its own"
    remaining_at_kill = progress.remaining(producer.end_offsets)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 0 < remaining_at_kill < n, "killed in the middle of the backlog"

    second = start()
    deadline = time.monotonic() + 120
    while progress.remaining(producer.end_offsets) and time.monotonic() < deadline:
        assert second.poll() is None, "the restarted sink died"
        time.sleep(0.2)
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    progress.close()
    query = "SELECT count() AS n, uniqExact(event_id) AS ids, (SELECT sum(events) FROM events_per_minute) AS rolled " \
            "FROM clickstream_events"
    out = subprocess.run([sys.executable, "-m", "streams.cli", "query", "--format", "json", query], env=env,
                         capture_output=True, check=True).stdout
    assert orjson.loads(out) == {"n": n, "ids": n, "rolled": n}
