"""Real `journey` worker processes serve /metrics, /healthz and /readyz, and the counters they publish
equal what was fed, stored and dead-lettered (sink, features) and what each processor read and wrote
(features, scoring, trainer, triggers, messages, deliver), with the trainer's model metrics."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas.registry import MODEL_LABELS as LABELS_TOPIC
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.sources.generator import generate
from streams.topics import model_snapshots
from tests.conftest import Backend, produce
from tests.integration.procs import WorkerProcess, caught_up, group_of, status, topics_of, topics_read, value, wait_for
from tests.integration.test_dead_letters import BAD
from tests.integration.test_scoring_pipeline import read_all

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
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "metrics",
           "JOURNEY_IDENTITY_RESOLUTION": "false",  # features read the raw inputs (no identity stage here)
           "JOURNEY_SINK_BATCH_SECONDS": "0.2",
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


#: The topics each processor worker writes (besides its changelog).
WRITES = {"features": ["customer-features"], "scoring": ["scores", "model-labels"],
          "trainer": ["model-metrics", "model-drift", model_snapshots("metrics")], "triggers": ["triggers"],
          "messages": ["message-decisions", "messages"], "deliver": ["deliveries"]}
#: Labels the trainer learns between two model-metrics records of a model (the scoring file below).
METRICS_EVERY = 20


def reads(role: str) -> list[str]:
    return [LABELS_TOPIC] if role == "trainer" else topics_of(role, "metrics")


def settle(kafka: dict[str, str], workers: list[WorkerProcess]) -> dict[str, int]:
    """Wait until every group has read all there is and nothing new came for a while (timers fire once
    the inputs are idle); the records on each topic then."""
    topics = sorted({t for role in WRITES for t in [*reads(role), *WRITES[role]]})
    before: dict[str, int] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for w in workers:
            caught_up(kafka, group_of("metrics", w.role), reads(w.role), workers)
        ends = end_offsets_by_eof(kafka, topics)
        now = {t: sum(n for (topic, _), n in ends.items() if topic == t) for t in topics}
        if now == before:
            return now
        before = now
        time.sleep(3.0)
    raise AssertionError("the processors never settled")


def test_every_processor_counts_exactly_what_it_read_and_wrote(backend: Backend, tmp_path: Path) -> None:
    """Features, scoring, the trainer, triggers, messages and deliver as `journey` processes, one each: each
    worker's events in per topic equal the records on the topics it reads, its events out per topic the
    records on the topics it writes; the trainer's model metrics equal its latest model-metrics record."""
    scoring_file = tmp_path / "scoring.toml"
    scoring_file.write_text(f"[purchase_propensity]\nhorizon_hours = 2\n[churn]\nhorizon_days = 3\n"
                            f"[evaluation]\nmetrics_every_labels = {METRICS_EVERY}\n")
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_DATA_DIR": str(tmp_path),
           "JOURNEY_GROUP_PREFIX": "metrics",
           "JOURNEY_IDENTITY_RESOLUTION": "false",  # features read the raw inputs (no identity stage here)
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2",
           "JOURNEY_SCORING_FILE": str(scoring_file), "JOURNEY_DELIVERY_FILE": str(tmp_path / "delivered.jsonl")}
    workers = [WorkerProcess(role, env, tmp_path / f"{role}.log") for role in WRITES]
    try:
        wait_for(lambda: all(w.ready() for w in workers), "ready workers", 90, workers)
        records = generate(customers=150, days=20, seed=5)
        fed = Counter(r.topic for r in records)
        produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
        on_topic = settle(backend.kafka, workers)
        scraped = {w.role: w.metrics() for w in workers}
        labels = read_all(backend.kafka, LABELS_TOPIC, backend.partitions)
        published = read_all(backend.kafka, "model-metrics", backend.partitions)
        drifts = Counter(d["model"] for d in read_all(backend.kafka, "model-drift", backend.partitions))
    finally:
        codes = [worker.stop() for worker in workers]
    assert codes == [0] * len(workers), f"workers exited {codes}: {[w.log_tail() for w in workers]}"

    assert all(on_topic[t] == n for t, n in fed.items()), (fed, on_topic)
    for role, samples in scraped.items():
        for topic in reads(role):
            assert value(samples, "journey_events_in_total", topic=topic) == on_topic[topic], (role, topic)
        for topic in WRITES[role]:
            assert value(samples, "journey_events_out_total", destination=topic) == on_topic[topic], (role, topic)
    assert all(on_topic[t] > 0 for t in ("customer-features", "scores", "triggers", "messages", "deliveries",
                                         "model-metrics", model_snapshots("metrics")))
    assert on_topic["deliveries"] == on_topic["messages"], "the console delivers every message"

    trainer = scraped["trainer"]
    learned = Counter(label["model"] for label in labels)
    latest = {m["model"]: m for m in sorted(published, key=lambda m: m["labels"])}
    assert set(latest) == set(learned) == {"purchase_propensity", "churn"}
    assert all(record["log_loss"] is not None and record["brier"] is not None for record in latest.values())
    for model, record in latest.items():
        assert record["labels"] == learned[model] - learned[model] % METRICS_EVERY
        assert value(trainer, "journey_model_labels_total", model=model) == record["labels"]
        for name in ("roc_auc", "log_loss", "brier"):  # none yet (a model without both classes): no sample
            assert trainer.get((f"journey_model_{name}", (("model", model),))) == record[name], (model, name)
        assert value(trainer, "journey_model_drift_total", model=model) == drifts[model]
