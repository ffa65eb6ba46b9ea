"""Real `journey sink` and `journey features` processes serve /metrics, /healthz and /readyz, and the
counters they publish equal what was fed, stored and dead-lettered."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.progress import GroupProgress
from tests.conftest import Backend, produce
from tests.integration.procs import WorkerProcess, status, topics_read, value, wait_for
from tests.integration.test_dead_letters import BAD

pytestmark = pytest.mark.integration


def fed_records() -> list[tuple[str, bytes | None, bytes | None]]:
    """Valid clickstream and orders for 40 customers, 150 of them sent twice, and every kind of bad record."""
    records: list[tuple[str, bytes | None, bytes | None]] = []
    for i in range(3000):
        customer = f"m{i % 40}"
        body = {"event_id": f"v{i}", "customer_id": customer, "event_time": f"2024-05-01T10:{i % 60:02d}:00Z",
                "type": "product_view", "product_id": f"p{i % 9}"}
        records.append(("clickstream", customer.encode(), orjson.dumps(body)))
    for i in range(400):
        customer = f"m{i % 40}"
        body = {"event_id": f"o{i}", "customer_id": customer, "event_time": f"2024-05-01T11:{i % 60:02d}:00Z",
                "type": "order_placed", "order_id": f"order-{i}", "amount": 10.5, "currency": "EUR"}
        records.append(("orders", customer.encode(), orjson.dumps(body)))
    return records + records[:150] + [(topic, key, value) for topic, key, value, _ in BAD]


def test_metrics_count_exactly_what_was_fed(backend: Backend, tmp_path: Path) -> None:
    records = fed_records()
    fed = Counter(topic for topic, _, _ in records)
    expected_letters = Counter(reason for *_, reason in BAD)
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn  # chDB: its own path
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "metrics", "JOURNEY_SINK_BATCH_SECONDS": "0.2",
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2", "JOURNEY_LOG_FORMAT": "json"}
    workers = [WorkerProcess(role, env, tmp_path / f"{role}.log") for role in ("sink", "features")]
    sink_worker, features_worker = workers
    try:
        wait_for(lambda: all(status(f"{w.url}/healthz") == 200 for w in workers), "live workers", 60, workers)
        wait_for(lambda: all(w.ready() for w in workers), "ready workers", 60, workers)
        producer = produce(backend.kafka, records)
        sink_progress = GroupProgress(backend.kafka, "metrics-sink")
        features_progress = GroupProgress(backend.kafka, "metrics-features")
        wait_for(lambda: sink_progress.remaining(producer.end_offsets) == 0, "sink catching up", 120, workers)
        wait_for(lambda: features_progress.remaining(producer.end_offsets) == 0, "features catching up", 120,
                 workers)
        sink_progress.close()
        features_progress.close()

        def profiles_stored() -> bool:
            out = value(features_worker.metrics(), "journey_events_out_total", destination="customer-features")
            return out > 0 and value(sink_worker.metrics(), "journey_events_out_total",
                                     destination="customer_profile_history") == out

        wait_for(profiles_stored, "every emitted profile stored", 60, workers)
        wait_for(lambda: all(any(n == "journey_consumer_lag" for n, _ in w.metrics())
                             and not any(v for (n, _), v in w.metrics().items() if n == "journey_consumer_lag")
                             for w in workers), "zero lag reported", 30, workers)

        sink, features = sink_worker.metrics(), features_worker.metrics()
        for topic in ("clickstream", "orders", "chat", "consent"):
            assert value(sink, "journey_events_in_total", topic=topic) == fed[topic], topic
            assert value(features, "journey_events_in_total", topic=topic) == fed[topic], topic
        assert value(sink, "journey_events_out_total", destination="clickstream_events") == 3000
        assert value(sink, "journey_events_out_total", destination="order_events") == 400
        assert value(sink, "journey_duplicates_skipped_total", topic="clickstream") == 150
        for reason, count in expected_letters.items():
            assert value(sink, "journey_dead_letters_total", reason=reason) == count, reason
        assert value(sink, "journey_events_out_total", destination="dead_letters") == len(BAD)
        assert value(sink, "journey_events_in_total", topic="customer-features") == value(
            features, "journey_events_out_total", destination="customer-features")
        assert value(features, "journey_invalid_input_skipped_total", processor="features") == len(BAD)
        for samples in (sink, features):
            assert value(samples, "journey_batch_seconds_count") > 0
            assert value(samples, "journey_flush_seconds_count") > 0
            role = "sink" if samples is sink else "features"  # the sink also stores every output topic
            assert value(samples, "journey_assigned_partitions") == topics_read(role) * backend.partitions
            lags = [v for (name, _), v in samples.items() if name == "journey_consumer_lag"]
            assert lags and not any(lags), "every assigned partition reports zero lag"
        assert value(sink, "journey_insert_seconds_count", table="clickstream_events") >= 1
    finally:
        codes = [worker.stop() for worker in workers]
    assert codes == [0, 0], f"workers exited {codes}: {[w.log_tail() for w in workers]}"
    for worker in workers:  # JSON logs: every line is one object
        lines = [orjson.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
        assert lines and all(line["role"] == worker.role for line in lines)
