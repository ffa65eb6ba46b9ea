"""Scores land in ClickHouse through the scoring worker and the trainer on the real broker; a restarted
trainer resumes from its snapshot with nothing learned lost."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from processors.features.build import build_features
from processors.scoring.config import load_scoring
from processors.scoring.processor import ScoringProcessor
from schemas.registry import INPUT_TOPICS
from streams.metrics import WorkerMetrics
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.scoring import ScoringWorker, TrainerWorker
from streams.sources.generator import generate
from streams.stateful import StatefulWorker
from streams.topics import CHANGELOGS
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.processors.scoring.test_drift import SERVED, step_labels

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000

CONFIG = dataclasses.replace(
    load_scoring(),
    purchase_propensity=dataclasses.replace(load_scoring().purchase_propensity, horizon_hours=2),
    churn=dataclasses.replace(load_scoring().churn, horizon_days=3),
    evaluation=dataclasses.replace(load_scoring().evaluation, metrics_every_labels=20),
    snapshots=dataclasses.replace(load_scoring().snapshots, every_seconds=0.2),
    learning=dataclasses.replace(load_scoring().learning, min_labels=10),  # churn learns about 20 here
)


def read_all(kafka: dict[str, str], topic: str, partitions: int) -> list[dict[str, Any]]:
    reader = Consumer({**kafka, "group.id": f"read-{topic}", "enable.partition.eof": True})
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    pending, records = set(range(partitions)), []
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for msg in reader.consume(10_000, 0.2):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                continue
            records.append(orjson.loads(msg.value()))
    reader.close()
    assert not pending
    return records


class Running:
    """A worker's ``run(stop)`` in a thread; errors are raised in the test."""

    def __init__(self, run: Callable[[threading.Event], Any]) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._work, args=(run,), daemon=True)
        self.thread.start()

    def _work(self, run: Callable[[threading.Event], Any]) -> None:
        try:
            run(self.stop)
        except BaseException as exc:
            self.errors.append(exc)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.errors, repr(self.errors[0])


def wait_for(kafka: dict[str, str], group: str, ends: dict[tuple[str, int], int], *workers: Running) -> None:
    progress = GroupProgress(kafka, group)
    deadline = time.monotonic() + 180
    try:
        while progress.remaining(ends):
            assert time.monotonic() < deadline, f"{group} did not catch up"
            for worker in workers:
                assert not worker.errors, repr(worker.errors[0])
            time.sleep(0.2)
    finally:
        progress.close()


def test_scores_metrics_and_snapshots_through_the_workers(backend: Backend) -> None:
    kafka = backend.kafka
    records = generate(customers=150, days=20, seed=5)
    producer = produce(kafka, [(r.topic, r.key, r.value) for r in records])
    features = Running(StatefulWorker(kafka, "it-features", list(INPUT_TOPICS), CHANGELOGS["features"],
                                      build_features(), flush_seconds=0.05).run)
    scorer = ScoringWorker(kafka, "it-scoring", ScoringProcessor(CONFIG), flush_seconds=0.2)
    scoring = Running(scorer.run)
    trainer_worker = TrainerWorker(kafka, "it-trainer", CONFIG)
    trainer = Running(trainer_worker.run)
    wait_for(kafka, "it-features", producer.end_offsets, features)
    features.finish()
    ends = {tp: n for tp, n in producer.end_offsets.items() if tp[0] == "orders"}
    ends.update(end_offsets_by_eof(kafka, ["customer-features"]))
    wait_for(kafka, "it-scoring", ends, scoring)
    scoring.finish()
    wait_for(kafka, "it-trainer", end_offsets_by_eof(kafka, ["model-labels"]), trainer)
    trainer.finish()

    labels = read_all(kafka, "model-labels", backend.partitions)
    assert trainer_worker.stats.labels == len(labels) > 50
    assert {label["model"] for label in labels} == {"purchase_propensity", "churn"}

    client = backend.client()
    outputs = end_offsets_by_eof(kafka, ["scores", "model-metrics", "model-drift"])
    sink_until_caught_up(backend, client, outputs, topics=("scores", "model-metrics", "model-drift"))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for score in read_all(kafka, "scores", backend.partitions):
        key = (score["customer_id"], score["model"])
        if key not in latest or score["scored_at"] >= latest[key]["scored_at"]:
            latest[key] = score
    rows = client.query("SELECT customer_id, model, score_id, probability, band FROM scores FINAL").result_rows
    assert {(c, m): (i, p, b) for c, m, i, p, b in rows} == \
        {k: (s["score_id"], s["probability"], s["band"]) for k, s in latest.items()}
    metrics = read_all(kafka, "model-metrics", backend.partitions)
    stored = client.query("SELECT model, labels, roc_auc FROM model_metrics FINAL ORDER BY model, labels").result_rows
    assert stored == sorted({(m["model"], m["labels"], m["roc_auc"]) for m in metrics})
    assert len(stored) >= 2

    # A new trainer loads the last snapshot: everything learned is there, and it learns nothing twice.
    health = WorkerMetrics("trainer")  # what `journey trainer` serves on /healthz and /readyz
    again = TrainerWorker(kafka, "it-trainer", CONFIG, metrics=health)
    rerun = Running(again.run)
    time.sleep(3)  # long enough to read every label again, were its positions lost
    assert health.ready and health.alive(1.0), "a restored, running trainer is live and ready"
    rerun.finish()
    assert again.trainer is not None and trainer_worker.trainer is not None
    assert {m: x.learned for m, x in again.trainer.models.items()} == \
        {m: x.learned for m, x in trainer_worker.trainer.models.items()}
    assert again.stats.labels == 0
    sample = labels[0]["features"]
    for name, model in again.trainer.models.items():
        assert model.predict(sample) == trainer_worker.trainer.models[name].predict(sample)

    # A restarted scorer loads that snapshot and resumes after what it had read: only new profiles are scored,
    # with the trainer's model versions and, past min_labels, no cold start.
    learned = {m: x.learned for m, x in trainer_worker.trainer.models.items()}
    assert min(learned.values()) >= CONFIG.learning.min_labels, learned
    before = read_all(kafka, "scores", backend.partitions)
    # The new profiles are a minute after the newest event: the restored customers' re-scoring timers (every
    # day, processors/scoring/rescore.py) that fall before it fire too, each at its own time, once.
    newest = max(r.event_time for r in records if r.event_time is not None) + timedelta(minutes=1)
    as_of = newest.isoformat().replace("+00:00", "Z")
    fresh = [(f"new-{i}", {"customer_id": f"new-{i}", "as_of": as_of, "events_total": 9 + i,
                           "features": {"sessions": 2, "orders_total": 1, "cart_items": i, "last_order_ms": T0}})
             for i in range(5)]
    produced = produce(kafka, [("customer-features", c.encode(), orjson.dumps(p)) for c, p in fresh])
    restarted = ScoringWorker(kafka, "it-scoring", ScoringProcessor(CONFIG), flush_seconds=0.2)
    rescoring = Running(restarted.run)
    ends = end_offsets_by_eof(kafka, ["customer-features", "orders"])
    wait_for(kafka, "it-scoring", {**ends, **produced.end_offsets}, rescoring)
    rescoring.finish()
    scores = read_all(kafka, "scores", backend.partitions)
    new = [s for s in scores if s["customer_id"].startswith("new-")]
    assert len(new) == 10, "each new profile scored once per model (its own timers are after the clock)"
    # Nothing old scored again: every score the restart added is at a moment not scored before it (a timer the
    # first run's clock had not reached yet, or a new customer). (A profile with the same as-of time but a
    # changed signature, e.g. an order read after later clicks, is scored again at that moment: the same score_id.)
    added = Counter((s["customer_id"], s["model"], s["scored_at"]) for s in scores) - \
        Counter((s["customer_id"], s["model"], s["scored_at"]) for s in before)
    assert sum(added.values()) == len(scores) - len(before) >= 10
    assert not set(added) & {(s["customer_id"], s["model"], s["scored_at"]) for s in before}
    assert {(s["customer_id"], s["model"], s["model_version"], s["cold_start"]) for s in new} == \
        {(c, m, learned[m], False) for c, _ in fresh for m in learned}


def test_a_step_in_the_error_lands_as_a_model_drift_row(backend: Backend) -> None:
    kafka = backend.kafka
    labels = [{"customer_id": "c1", "model": "churn", "predicted_at_ms": T0 + i * 1000,
               "labelled_at_ms": T0 + i * 1000 + 500, "label": label, "features": {"orders_total": float(i % 7)},
               "raw_probability": SERVED, "probability": SERVED, "model_version": 0}
              for i, label in enumerate(step_labels(step_at=600))]  # one key: one partition, in order
    producer = produce(kafka, [("model-labels", b"c1", orjson.dumps(label)) for label in labels])
    trainer = Running(TrainerWorker(kafka, "it-drift-trainer", CONFIG).run)
    wait_for(kafka, "it-drift-trainer", producer.end_offsets, trainer)
    trainer.finish()
    [drift] = read_all(kafka, "model-drift", backend.partitions)
    client = backend.client()
    sink_until_caught_up(backend, client, end_offsets_by_eof(kafka, ["model-drift"]), topics=("model-drift",))
    rows = client.query("SELECT drift_id, model, model_version, labels, detected_at, error_before, error_after, "
                        "window FROM model_drift FINAL").result_rows
    # The 672nd label is where the watch cuts its window (tests/processors/scoring/test_drift.py).
    [(drift_id, model, version, count, detected_at, before, after, window)] = rows
    assert (drift_id, model, version, count, window) == (drift["drift_id"], "churn", 671, 672, 352)
    assert round(detected_at.timestamp() * 1000) == T0 + 671 * 1000 + 500
    assert (before, after) == (pytest.approx(0.2299552906110275), pytest.approx(0.2840909090909076))
