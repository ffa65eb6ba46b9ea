"""No sink worker calls its consumer from inside a rebalance or statistics callback (issue 17, item 1).

Such a call ends the call state of the ``consume`` running the callback, and the next callback
aborts the process (``CallState_get: Assertion 'cs != NULL' failed``) in a share of runs that
depends on timing. :mod:`tests.callback_guard` makes every such call fail every time.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka import TopicPartition

from sinks.client import apply_schema
from sinks.ingest import IngestSink, SinkConfig
from tests.callback_guard import guarded_consumer
from tests.conftest import Backend, produce, reset_clickhouse
from tests.integration.test_redelivery import events
from tests.rebalancing import join_and_leave_twice, run_in_thread, wait

pytestmark = pytest.mark.integration


class CountingSink(IngestSink):
    """The real sink, counting the assignments it received."""

    assignments = 0

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        super().on_assign(partitions)
        type(self).assignments += 1


def test_a_sink_rebalanced_several_times_never_calls_its_consumer_from_a_callback(
        backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    violations: list[str] = []
    monkeypatch.setattr("plumbing.batch_worker.Consumer", guarded_consumer(violations))
    client = backend.client()
    reset_clickhouse(client)
    apply_schema(client)
    group = f"cb-{uuid.uuid4().hex[:6]}"
    stats_seen: list[int] = []
    config = SinkConfig(group_id=group, batch_rows=500, batch_seconds=0.1, min_batch_rows=100,
                        consumer_overrides={"statistics.interval.ms": 100,
                                            "stats_cb": lambda raw: stats_seen.append(len(raw))})
    records = events(9000, customers=200)
    CountingSink.assignments = 0
    first = CountingSink(backend.kafka, client, config)
    stop_first = threading.Event()
    thread, errors = run_in_thread(first, stop_first)
    ends: dict[tuple[str, int], int] = {}
    try:
        ends.update(produce(backend.kafka, records[:3000]).end_offsets)
        wait(lambda: sum(first.stats.consumed.values()) > 0, "the first worker to consume", errors)
        # a second worker joins (rebalance), then leaves (rebalance), twice
        join_and_leave_twice(backend.kafka, group, lambda: CountingSink(backend.kafka, backend.client(), config),
                             [records[3000:6000], records[6000:9000]], ends, lambda: CountingSink.assignments, errors)
    finally:
        stop_first.set()
        thread.join(60)
    assert not errors, f"the first worker failed: {errors[0]!r}"
    assert violations == []
    assert CountingSink.assignments >= 5, "the group rebalanced several times"
    assert stats_seen, "the statistics callback ran (and was guarded)"
    stored = client.query("SELECT count(), uniqExact(event_id) FROM clickstream_events").result_rows[0]
    assert stored == (9000, 9000)
