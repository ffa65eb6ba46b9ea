"""The sink through faults: ClickHouse away for a while, the broker restarted mid-run (issue 17).

Everything is real (the embedded broker, chDB, the sink) except the failure itself: a wrapper
around the real ClickHouse client refuses every call for a few seconds. Counts are exact: what
was stored, retried and dead-lettered, and nothing lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from sinks.client import apply_schema, connect
from sinks.ingest import IngestSink, SinkConfig
from streams.broker import EmbeddedBroker
from streams.progress import GroupProgress
from streams.topics import ensure_topics, topic_specs
from tests.conftest import Backend, produce, reset_clickhouse
from tests.integration.test_large_dead_letters import read_letters
from tests.integration.test_sink_pipeline import run_in_thread

pytestmark = pytest.mark.integration


class OutageClient:
    """The real ClickHouse client; once ``armed``, its inserts and queries fail for ``seconds`` from the first one."""

    def __init__(self, client: Client, seconds: float) -> None:
        self._client = client
        self.seconds = seconds
        self.armed = False
        self.began: float | None = None
        self.refused = 0

    def _down(self) -> bool:
        if not self.armed:
            return False
        if self.began is None:
            self.began = time.monotonic()
        return time.monotonic() - self.began < self.seconds

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._down():
            self.refused += 1
            raise ConnectionError(f"injected: ClickHouse unavailable ({name})")
        return getattr(self._client, name)(*args, **kwargs)

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("insert_arrow", *args, **kwargs)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("query", *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def records(first: int, n: int, bad_every: int = 0) -> list[tuple[str, bytes | None, bytes | None]]:
    """``n`` clickstream events e<first>...; every ``bad_every``-th is malformed JSON instead."""
    out: list[tuple[str, bytes | None, bytes | None]] = []
    for i in range(first, first + n):
        customer = f"c{i % 97}"
        if bad_every and i % bad_every == 0:
            out.append(("clickstream", customer.encode(), b'{"event_id": "bad-%d", ' % i))
            continue
        out.append(("clickstream", customer.encode(), orjson.dumps({
            "event_id": f"e{i}", "customer_id": customer, "event_time": "2024-05-01T10:00:00Z",
            "type": "page_view"})))
    return out


def wait(done: Callable[[], bool], what: str, errors: list[BaseException], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert not errors, f"the sink failed: {errors[0]!r}"
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        time.sleep(0.1)


def count(client: Client, sql: str) -> int:
    return int(client.query(sql).result_rows[0][0])


@pytest.mark.parametrize("from_start", [False, True], ids=["mid-run", "from-start"])
def test_clickhouse_unavailable_for_a_while_stores_everything_once(backend: Backend, from_start: bool) -> None:
    """Mid-run: inserts refused. From the start: the reads of stored dead letters and ids are refused too."""
    client = backend.client()
    reset_clickhouse(client)
    apply_schema(client)
    outage = OutageClient(client, seconds=3.0)
    outage.armed = from_start
    group = f"outage-{from_start}"
    sink = IngestSink(backend.kafka, outage, SinkConfig(group_id=group, batch_rows=500,  # type: ignore[arg-type]
                                                         batch_seconds=0.1, min_batch_rows=100))
    stop = threading.Event()
    progress = GroupProgress(backend.kafka, group)
    before = produce(backend.kafka, records(0, 1000, bad_every=50)).end_offsets
    thread, errors = run_in_thread(sink, stop)
    try:
        wait(lambda: progress.remaining(before) == 0, "the first records to be committed", errors)
        outage.armed = True
        ends = {**before, **produce(backend.kafka, records(1000, 3000, bad_every=50)).end_offsets}
        wait(lambda: outage.began is not None, "the outage to begin", errors)
        wait(lambda: progress.remaining(ends) == 0, "every record to be committed", errors)
    finally:
        stop.set()
        thread.join(60)
        progress.close()
    assert not errors, f"the sink failed: {errors[0]!r}"
    assert outage.refused > 0
    assert sum(sink.stats.insert_retries.values()) == outage.refused, "every refused call was tried again"
    if from_start:
        assert sink.stats.insert_retries["dead_letters"] > 0, "the first call, reading the stored dead letters"
    assert count(client, "SELECT count() FROM clickstream_events") == 4000 - 80
    assert count(client, "SELECT uniqExact(event_id) FROM clickstream_events") == 4000 - 80
    assert count(client, "SELECT count() FROM dead_letters") == 80
    assert sink.stats.dead_letters == {"malformed_json": 80}
    assert sink.stats.inserted["clickstream_events"] == 4000 - 80 and not sink.stats.duplicates
    assert len(read_letters(backend.kafka, backend.partitions)) == 80


def test_broker_restarted_mid_run_the_sink_reconnects_and_stores_each_record_once(
        chdb_path: Path, tmp_path: Path) -> None:
    """Tansu keeps its data in memory: a restarted broker is empty (topics, records, committed offsets).
    What can be checked: the sink does not crash, what it acknowledged before is stored once (records sent
    again after the restart are skipped), and it goes on with what is produced to the new broker."""
    client = connect(f"chdb://{chdb_path}")
    reset_clickhouse(client)
    apply_schema(client)
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log").start()
    kafka = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(kafka, topic_specs(4))
    sink = IngestSink(kafka, client, SinkConfig(group_id="restart", batch_rows=500, batch_seconds=0.1,
                                                min_batch_rows=100))
    stop = threading.Event()
    thread, errors = run_in_thread(sink, stop)
    try:
        progress = GroupProgress(kafka, "restart")
        first = produce(kafka, records(0, 2000, bad_every=100)).end_offsets
        wait(lambda: progress.remaining(first) == 0, "the first records to be committed", errors)
        progress.close()
        stored_before = count(client, "SELECT count() FROM clickstream_events")
        assert stored_before == 2000 - 20

        broker.stop()
        time.sleep(3)  # the sink runs on without a broker meanwhile
        assert thread.is_alive() and not errors
        broker.start()
        ensure_topics(kafka, topic_specs(4))
        # Sent again (a producer retrying into the new broker), and new records.
        second = produce(kafka, records(1000, 3000, bad_every=100)).end_offsets
        progress = GroupProgress(kafka, "restart")
        wait(lambda: progress.remaining(second) == 0, "the records on the restarted broker to be committed",
             errors, seconds=300)
        progress.close()
    finally:
        stop.set()
        thread.join(60)
        broker.stop()
    assert not errors, f"the sink failed: {errors[0]!r}"
    assert count(client, "SELECT count() FROM clickstream_events") == 4000 - 40
    assert count(client, "SELECT uniqExact(event_id) FROM clickstream_events") == 4000 - 40
    assert count(client, "SELECT count() FROM dead_letters") == 40
    assert sink.stats.duplicates["clickstream"] == 1000 - 10
    assert sink.stats.duplicates["dead-letters"] == 10, "the bad records sent again are the same dead letters"
