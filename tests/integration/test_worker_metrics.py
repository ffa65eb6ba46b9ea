"""Real `journey sink` and `journey features` processes serve /metrics, /healthz and /readyz, and the
counters they publish equal what was fed, stored and dead-lettered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import free_port
from streams.progress import GroupProgress
from tests.conftest import Backend, produce
from tests.integration.test_dead_letters import BAD

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, keyed by name and sorted labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


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


def wait_for(check: Callable[[], bool], what: str, timeout: float, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for process in processes:
            assert process.poll() is None, f"a worker died while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s"
        time.sleep(0.25)


def test_metrics_count_exactly_what_was_fed(backend: Backend, tmp_path: Path) -> None:
    records = fed_records()
    fed = Counter(topic for topic, _, _ in records)
    expected_letters = Counter(reason for *_, reason in BAD)
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn  # chDB: its own path
    ports = {"sink": free_port(), "features": free_port()}
    urls = {role: f"http://127.0.0.1:{port}" for role, port in ports.items()}
    base = {**os.environ, "JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
            "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "metrics", "JOURNEY_SINK_BATCH_SECONDS": "0.2",
            "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2", "JOURNEY_LOG_FORMAT": "json"}
    logs = {role: tmp_path / f"{role}.log" for role in ports}
    processes = []
    for role, port in ports.items():
        with logs[role].open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "streams.cli", role], stdout=log, stderr=log,
                                              env={**base, "JOURNEY_METRICS_PORT": str(port)}))
    try:
        wait_for(lambda: all(status(f"{u}/healthz") == 200 for u in urls.values()), "live workers", 60, processes)
        wait_for(lambda: all(status(f"{u}/readyz") == 200 for u in urls.values()), "ready workers", 60, processes)
        producer = produce(backend.kafka, records)
        sink_progress = GroupProgress(backend.kafka, "metrics-sink")
        features_progress = GroupProgress(backend.kafka, "metrics-features")
        wait_for(lambda: sink_progress.remaining(producer.end_offsets) == 0, "sink catching up", 120, processes)
        wait_for(lambda: features_progress.remaining(producer.end_offsets) == 0, "features catching up", 120,
                 processes)
        sink_progress.close()
        features_progress.close()

        def profiles_stored() -> bool:
            out = value(scrape(urls["features"]), "journey_events_out_total", destination="customer-features")
            return out > 0 and value(scrape(urls["sink"]), "journey_events_out_total",
                                     destination="customer_profile_history") == out

        wait_for(profiles_stored, "every emitted profile stored", 60, processes)
        wait_for(lambda: all(value(scrape(u), "journey_consumer_lag", topic="clickstream", partition="0") == 0
                             and any(n == "journey_consumer_lag" for n, _ in scrape(u)) for u in urls.values()),
                 "zero lag reported", 30, processes)

        sink, features = scrape(urls["sink"]), scrape(urls["features"])
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
            assert value(samples, "journey_assigned_partitions") == 4 * backend.partitions + (
                2 * backend.partitions if samples is sink else 0)  # the sink also stores profiles and late events
            lags = [v for (name, _), v in samples.items() if name == "journey_consumer_lag"]
            assert lags and not any(lags), "every assigned partition reports zero lag"
        assert value(sink, "journey_insert_seconds_count", table="clickstream_events") >= 1
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in processes]
    assert codes == [0, 0], f"workers exited {codes}; logs: {[p.read_text()[-2000:] for p in logs.values()]}"
    for role, path in logs.items():  # JSON logs: every line is one object
        lines = [orjson.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        assert lines and all(line["role"] == role for line in lines)
