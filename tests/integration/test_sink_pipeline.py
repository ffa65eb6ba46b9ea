"""The sink inserts a batch on its insert thread while it consumes the next; offsets follow only a stored batch."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from sinks.client import apply_schema
from sinks.ingest import MAX_QUEUED, IngestSink, InsertFailed, SinkConfig
from streams.progress import GroupProgress
from tests.conftest import Backend, produce, reset_clickhouse
from tests.integration.test_redelivery import events
from tests.rebalancing import run_in_thread

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


@dataclass
class Running:
    """A gated sink running in a thread over ``records`` fed events, and what the test watches."""

    sink: IngestSink
    gated: GatedClient
    client: Client
    progress: GroupProgress
    end_offsets: dict[tuple[str, int], int]
    errors: list[BaseException]

    def consumed(self) -> int:
        return sum(self.sink.stats.consumed.values())

    def wait_until(self, done: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline and not self.errors:
            time.sleep(0.05)
        assert not self.errors, f"sink failed: {self.errors[0]!r}"


@contextlib.contextmanager
def running(backend: Backend, group: str, records: int, **config: Any) -> Iterator[Running]:
    producer = produce(backend.kafka, events(records))
    sink, gated, client = gated_sink(backend, group, **config)
    progress = GroupProgress(backend.kafka, group)
    stop = threading.Event()
    thread, errors = run_in_thread(sink, stop)
    try:
        yield Running(sink, gated, client, progress, producer.end_offsets, errors)
    finally:
        gated.gate.set()
        stop.set()
        thread.join(30)
        progress.close()


def test_offsets_are_committed_only_after_the_insert_thread_stored_the_batch(backend: Backend) -> None:
    with running(backend, "pipeline", 6000) as run:
        assert run.gated.entered.wait(60), "the sink never flushed"
        run.wait_until(lambda: run.consumed() >= 2000, 30)
        # The first batch is held at the gate; the sink has gone on consuming the next one meanwhile.
        assert run.consumed() >= 2000
        assert run.progress.remaining(run.end_offsets) == 6000, "committed before the insert finished"
        assert run.client.query("SELECT count() FROM clickstream_events").result_rows[0][0] == 0
        run.gated.gate.set()
        run.wait_until(lambda: not run.progress.remaining(run.end_offsets))
        assert run.progress.remaining(run.end_offsets) == 0
    client = run.client
    assert client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0] == (6000, 6000)
    assert client.query("SELECT sum(events) FROM events_per_minute").result_rows[0][0] == 6000
    assert run.sink.stats.inserted["clickstream_events"] == 6000
    assert run.gated.inserts == run.sink.stats.batches


def test_batches_built_while_a_store_is_in_flight_wait_and_are_then_stored_as_one(backend: Backend) -> None:
    waiting = 1000 * (MAX_QUEUED + 1)  # batches 2-5: past MAX_QUEUED the consuming thread waits as well
    with running(backend, "queued", 6000) as run:
        run.wait_until(lambda: run.consumed() >= 1000 + waiting)
        time.sleep(0.5)
        assert run.consumed() == 1000 + waiting, "the sink did not stop at the queue's limit"
        assert run.progress.remaining(run.end_offsets) == 6000
        run.gated.gate.set()
        run.wait_until(lambda: not run.progress.remaining(run.end_offsets))
    assert run.gated.rows == [1000, waiting, 1000], "the waiting batches were not stored with one insert"
    assert run.sink.stats.batches == 3
    client = run.client
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
    with running(backend, group, records, **config) as run:
        run.gated.gate.set()
        run.wait_until(lambda: run.consumed() > 0)  # measured from the first record read
        started = time.monotonic()
        run.wait_until(lambda: not run.progress.remaining(run.end_offsets), seconds)
        return None if run.progress.remaining(run.end_offsets) else time.monotonic() - started


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
