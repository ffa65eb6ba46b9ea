"""The sink inserts a batch on its insert thread while it consumes the next; offsets follow only a stored batch."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from sinks.client import apply_schema
from sinks.ingest import MAX_QUEUED, IngestSink, InsertFailed, SinkConfig
from streams.progress import GroupProgress
from tests.conftest import Backend, produce, reset_clickhouse
from tests.integration.test_redelivery import events

pytestmark = pytest.mark.integration


class GatedClient:
    """The real ClickHouse client, with inserts held at a gate (or refused) so the test can look in between."""

    def __init__(self, client: Client, fail: bool = False) -> None:
        self._client = client
        self.fail = fail
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.inserts = 0
        self.rows: list[int] = []  # per insert that went through

    def insert_arrow(self, table: str, data: Any, settings: dict[str, Any] | None = None) -> None:
        self.entered.set()
        if self.fail:
            raise ConnectionError("injected: ClickHouse refuses the insert")
        self.gate.wait(60)
        self.inserts += 1
        self.rows.append(data.num_rows)
        self._client.insert_arrow(table, data, settings=settings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def run_in_thread(sink: IngestSink, stop: threading.Event) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:  # surfaced to the test
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, errors


def gated_sink(backend: Backend, group: str, fail: bool = False,
               **config: Any) -> tuple[IngestSink, GatedClient, Client]:
    """A sink of ``group`` (1000-record batches unless ``config`` says otherwise) writing through a
    :class:`GatedClient` into a clean database."""
    client = backend.client()
    reset_clickhouse(client)
    apply_schema(client)
    gated = GatedClient(client, fail)
    config = {"batch_rows": 1000, "batch_seconds": 0.1, **config}
    sink = IngestSink(backend.kafka, gated, SinkConfig(group_id=group, **config))  # type: ignore[arg-type]
    return sink, gated, client


def test_offsets_are_committed_only_after_the_insert_thread_stored_the_batch(backend: Backend) -> None:
    records = events(6000)
    producer = produce(backend.kafka, records)
    sink, gated, client = gated_sink(backend, "pipeline")
    progress = GroupProgress(backend.kafka, "pipeline")
    stop = threading.Event()
    thread, errors = run_in_thread(sink, stop)
    try:
        assert gated.entered.wait(60), "the sink never flushed"
        deadline = time.monotonic() + 30
        while sum(sink.stats.consumed.values()) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The first batch is held at the gate; the sink has gone on consuming the next one meanwhile.
        assert sum(sink.stats.consumed.values()) >= 2000
        assert progress.remaining(producer.end_offsets) == len(records), "committed before the insert finished"
        assert client.query("SELECT count() FROM clickstream_events").result_rows[0][0] == 0
        gated.gate.set()
        deadline = time.monotonic() + 60
        while progress.remaining(producer.end_offsets) and time.monotonic() < deadline and not errors:
            time.sleep(0.1)
        assert not errors, f"sink failed: {errors[0]!r}"
        assert progress.remaining(producer.end_offsets) == 0
    finally:
        gated.gate.set()
        stop.set()
        thread.join(30)
        progress.close()
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (6000, 6000)
    assert client.query("SELECT sum(events) FROM events_per_minute").result_rows[0][0] == 6000
    assert sink.stats.inserted["clickstream_events"] == 6000
    assert gated.inserts == sink.stats.batches


def test_batches_built_while_a_store_is_in_flight_wait_and_are_then_stored_as_one(backend: Backend) -> None:
    records = events(6000)
    producer = produce(backend.kafka, records)
    sink, gated, client = gated_sink(backend, "queued")
    progress = GroupProgress(backend.kafka, "queued")
    stop = threading.Event()
    thread, errors = run_in_thread(sink, stop)
    waiting = 1000 * (MAX_QUEUED + 1)  # batches 2-5: past MAX_QUEUED the consuming thread waits as well
    try:
        deadline = time.monotonic() + 60
        while sum(sink.stats.consumed.values()) < 1000 + waiting and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
        time.sleep(0.5)
        assert sum(sink.stats.consumed.values()) == 1000 + waiting, "the sink did not stop at the queue's limit"
        assert progress.remaining(producer.end_offsets) == len(records)
        gated.gate.set()
        while progress.remaining(producer.end_offsets) and time.monotonic() < deadline and not errors:
            time.sleep(0.1)
        assert not errors, f"sink failed: {errors[0]!r}"
    finally:
        gated.gate.set()
        stop.set()
        thread.join(30)
        progress.close()
    assert gated.rows == [1000, waiting, 1000], "the waiting batches were not stored with one insert"
    assert sink.stats.batches == 3
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (6000, 6000)
    assert client.query("SELECT sum(events) FROM events_per_minute").result_rows[0][0] == 6000


def test_an_insert_that_keeps_failing_stops_the_sink_and_commits_nothing(backend: Backend) -> None:
    records = events(3000)
    producer = produce(backend.kafka, records)
    sink, _, _ = gated_sink(backend, "refused", fail=True, insert_retries=2)
    stop = threading.Event()
    thread, errors = run_in_thread(sink, stop)
    thread.join(60)
    stop.set()
    assert not thread.is_alive(), "the sink kept running over a batch it could not store"
    assert errors and isinstance(errors[0], InsertFailed), errors
    assert "failed 2 times" in str(errors[0]) and "injected" in str(errors[0])
    progress = GroupProgress(backend.kafka, "refused")
    assert progress.remaining(producer.end_offsets) == len(records), "offsets committed for a batch not stored"
    progress.close()


def _committed_within(backend: Backend, group: str, records: int, seconds: float, **config: Any) -> float | None:
    """Seconds until a sink with ``config`` committed ``records`` fed events, or None if not within ``seconds``."""
    producer = produce(backend.kafka, events(records))
    sink, gated, _ = gated_sink(backend, group, **config)
    gated.gate.set()
    progress = GroupProgress(backend.kafka, group)
    stop = threading.Event()
    thread, errors = run_in_thread(sink, stop)
    try:
        while not sum(sink.stats.consumed.values()) and not errors:  # measured from the first record read
            time.sleep(0.01)
        started = time.monotonic()
        while time.monotonic() - started < seconds and not errors:
            if not progress.remaining(producer.end_offsets):
                return time.monotonic() - started
            time.sleep(0.05)
        assert not errors, f"sink failed: {errors[0]!r}"
        return None
    finally:
        stop.set()
        thread.join(30)
        progress.close()


def test_a_caught_up_sink_stores_a_batch_worth_an_insert_without_waiting_for_the_clock(backend: Backend) -> None:
    # 3000 records read, nothing more to come: 3000 >= min_batch_rows, so no waiting out batch_seconds.
    took = _committed_within(backend, "early", 3000, 20, batch_rows=100_000, batch_seconds=60, min_batch_rows=1000)
    assert took is not None, "the batch waited for sink_batch_seconds although the sink had caught up"


def test_a_caught_up_sink_keeps_a_small_batch_until_it_is_old_enough(backend: Backend) -> None:
    # 500 records < min_batch_rows: stored only when the batch is batch_seconds old.
    assert _committed_within(backend, "small", 500, 4, batch_rows=100_000, batch_seconds=60,
                             min_batch_rows=1000) is None
    took = _committed_within(backend, "small-due", 500, 20, batch_rows=100_000, batch_seconds=2, min_batch_rows=1000)
    assert took is not None and took >= 1.5
