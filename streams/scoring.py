"""Hosting scoring: scorer workers on the profiles and orders, and the single trainer.

Scorers (``journey scoring``, 1..N in one group) are stateful workers on
``customer-features`` and ``orders`` (co-partitioned by customer). Per customer they keep
the held predictions in the changelogged state, score with the latest model snapshot
and publish ``scores`` and ``model-labels``. Once per flush, before the state is written,
the partition's watermark (newest event time seen minus the allowed lateness) expires the
held predictions whose horizon it passed (both outcomes are released then: labels.py), and any
newer snapshot is loaded. The scorer has timers (``ScoringProcessor.due``/``next_timer``): the
stateful host re-scores every scored customer on the re-scoring schedule (processors/scoring/rescore.py)
when its clock passes it, the event-time watermark in a replay and the wall clock once live.

The trainer (``journey trainer``, exactly one) reads ``model-labels`` from every partition
by assignment, learns, publishes ``model-metrics`` and ``model-drift``, and about once a
second a snapshot of its whole state, including the label offsets it has learned, to the
compacted ``model-snapshots`` topic. The snapshot is the trainer's commit: a restarted
trainer loads the latest one and resumes from its offsets, so nothing learned is lost
and nothing is learned twice. (Labels themselves are at least once: a scorer that crashes
after publishing a label and before writing its state publishes it again.)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from plumbing.metadata import metadata
from plumbing.produce import CLIENT_LOGGER, PARTITIONER
from plumbing.restore import Ends, end_reader
from plumbing.waiting import StallWatch, flush_following
from processors.scoring.config import ScoringConfig
from processors.scoring.labels import CustomerScoring
from processors.scoring.processor import ScoringProcessor
from processors.scoring.trainer import Trainer, TrainerState, load_snapshot
from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
from schemas.registry import MODEL_DRIFT as DRIFT_TOPIC
from schemas.registry import MODEL_LABELS as LABELS_TOPIC
from schemas.registry import MODEL_METRICS as METRICS_TOPIC
from schemas.registry import ORDERS as ORDERS_TOPIC
from streams.metrics import ModelMetrics, WorkerMetrics, counted
from streams.stateful import Entry, StatefulWorker
from streams.topics import CHANGELOGS, MODEL_SNAPSHOTS, ensure_compacted

log = logging.getLogger(__name__)
SNAPSHOT_KEY = b"models"


class SnapshotReader:
    """Follows ``model-snapshots`` from the beginning; ``latest`` is the newest trainer state seen."""

    def __init__(self, kafka_config: dict[str, str], topic: str = MODEL_SNAPSHOTS) -> None:
        self.topic = topic
        ensure_compacted(kafka_config, topic, LABELS_TOPIC)
        self._consumer = end_reader(kafka_config, f"{topic}-reader", **{"fetch.queue.backoff.ms": 10})
        found = metadata(self._consumer, topic).topics[topic]
        self._ends = Ends(((topic, p) for p in found.partitions), errors="skip")
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions])
        self.latest: TrainerState | None = None
        self._latest_raw: bytes | None = None

    def read_to_end(self) -> TrainerState | None:
        """Block until every partition reached its end (partition EOF); the newest state. Fails only when
        no partition end and no snapshot arrived for the stall time (the ``stall_seconds`` setting)."""
        watch = StallWatch(f"reading {self.topic} to its end")
        while not self._ends.done:
            watch.observe((len(self._ends.pending), id(self._latest_raw)))
            watch.check(f"partitions without an end yet: {sorted(p for _, p in self._ends.pending)}")
            self.poll(0.1)
        return self.latest

    def poll(self, timeout: float = 0.0) -> bool:
        """Take what arrived; whether a newer snapshot was loaded."""
        newest = None
        for msg in self._ends.records(self._consumer.consume(1000, timeout)):
            if msg.key() == SNAPSHOT_KEY and msg.value() is not None:
                newest = msg.value()
        if newest is None or newest == self._latest_raw:
            return False
        self._latest_raw = newest
        self.latest = load_snapshot(newest)
        return True

    def close(self) -> None:
        self._consumer.close()


class ScoringWorker(StatefulWorker[CustomerScoring]):
    """One scorer: the stateful worker plus watermark expiry and snapshot loading at every flush."""

    def __init__(self, kafka_config: dict[str, str], group_id: str, processor: ScoringProcessor,
                 flush_seconds: float = 1.0, changelog: str = CHANGELOGS["scoring"],
                 snapshots_topic: str = MODEL_SNAPSHOTS, **kwargs: Any) -> None:
        super().__init__(kafka_config, group_id, [PROFILE_TOPIC, ORDERS_TOPIC], changelog, processor,
                         flush_seconds=flush_seconds, **kwargs)
        self.scoring = processor
        self.lateness_ms = processor.config.labels.lateness_ms
        self.snapshots = SnapshotReader(kafka_config, snapshots_topic)
        self._newest: dict[int, int] = {}  # partition -> newest event time of its customers
        self._holding: dict[int, set[str]] = {}  # partition -> customers with held predictions
        self.labels_expired = 0

    def start(self) -> None:
        self._load(self.snapshots.read_to_end())
        super().start()

    def _load(self, state: TrainerState | None) -> None:
        if state is not None:
            self.scoring.models = state.models
            log.info("scoring with snapshot %d (versions %s)", state.sequence,
                     {m: model.learned for m, model in state.models.items()})

    def _restore(self, partitions: list[int]) -> dict[int, dict[str, Entry[CustomerScoring]]]:
        stores = super()._restore(partitions)
        for p, store in stores.items():
            self._newest[p] = max((e.state.newest_ms for e in store.values()), default=-1)
            self._holding[p] = {k for k, e in store.items() if e.state.held}
        return stores

    def _write(self) -> None:
        """Before each flush's writes: the newest model snapshot, and the labels whose horizon has passed."""
        if self.snapshots.poll():
            self._load(self.snapshots.latest)
        for partition, keys in self._dirty.items():
            store = self.stores[partition]
            holding = self._holding.setdefault(partition, set())
            newest = self._newest.get(partition, -1)
            for key in keys:
                state = store[key].state
                newest = max(newest, state.newest_ms)
                if state.held:
                    holding.add(key)
            self._newest[partition] = newest
            watermark = newest - self.lateness_ms
            for key in list(holding):
                entry = store.get(key)
                if entry is None:  # erased (privacy request): its held predictions went with its state
                    holding.discard(key)
                    continue
                state = entry.state
                due = state.next_deadline_ms
                if due is not None and due < watermark:
                    for output in self.scoring.expire(state, watermark):
                        self._produce(*output)
                        self.labels_expired += 1
                    keys.add(key)
                if not state.held:
                    holding.discard(key)
        super()._write()

    def close(self) -> None:
        super().close()
        self.snapshots.close()


@dataclass
class TrainerStats:
    labels: int = 0
    snapshots: int = 0
    metrics: int = 0
    drift: int = 0


class TrainerWorker:
    """The single trainer (see the module docstring for its commit protocol)."""

    def __init__(self, kafka_config: dict[str, str], group_id: str, config: ScoringConfig,
                 batch_rows: int = 10_000, metrics: WorkerMetrics | None = None,
                 snapshots_topic: str = MODEL_SNAPSHOTS) -> None:
        self.kafka = kafka_config
        self.snapshots_topic = snapshots_topic
        self.metrics = metrics  # liveness (each loop turn) and readiness (snapshot restored) for /healthz, /readyz
        self.models: ModelMetrics | None = None  # the models' metrics on /metrics, when served
        if metrics is not None:
            self.models = ModelMetrics()
            metrics.registry.register(self.models)
        self.group_id = group_id
        self.config = config
        self.batch_rows = batch_rows
        self.stats = TrainerStats()
        self.trainer: Trainer | None = None
        self._producer = Producer({**kafka_config, "partitioner": PARTITIONER, "logger": CLIENT_LOGGER,
                                   "linger.ms": 5, "enable.idempotence": False, "message.max.bytes": 10_000_000})
        self._send = self._producer.produce if metrics is None else counted(self._producer.produce, metrics)
        self._since_snapshot = 0
        self._since_metrics: dict[str, int] = {}
        self._errors: list[str] = []

    def _restore(self) -> Trainer:
        reader = SnapshotReader(self.kafka, self.snapshots_topic)
        try:
            state = reader.read_to_end()
        finally:
            reader.close()
        if state is not None:
            log.info("trainer restored snapshot %d: %s labels learned, positions %s", state.sequence,
                     {m: model.learned for m, model in state.models.items()}, state.positions)
        return Trainer(self.config, state)

    def run(self, stop: threading.Event) -> TrainerStats:
        self.trainer = trainer = self._restore()
        if self.models is not None:  # what the snapshot's models stand at, until they publish anew
            for model, prequential in trainer.state.metrics.items():
                if prequential.labels:
                    self.models.observe("metrics", trainer.metrics(model))
                self.models.drifts[model] = trainer.state.drift[model].detections
        consumer = Consumer({**self.kafka, "group.id": self.group_id, "enable.auto.commit": False,
                             "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10})
        partitions = metadata(consumer, LABELS_TOPIC).topics[LABELS_TOPIC].partitions
        positions = trainer.state.positions
        consumer.assign([TopicPartition(LABELS_TOPIC, p, positions.get(p, OFFSET_BEGINNING)) for p in partitions])
        last_snapshot = time.monotonic()
        if self.metrics is not None:
            self.metrics.ready = True
        try:
            while not stop.is_set():
                if self.metrics is not None:
                    self.metrics.last_tick = time.monotonic()
                for msg in consumer.consume(self.batch_rows, 0.2):
                    if msg.error() is not None:
                        continue
                    self._learn(orjson.loads(msg.value()))
                    positions[msg.partition()] = msg.offset() + 1
                if self._since_snapshot and time.monotonic() - last_snapshot >= self.config.snapshots.every_seconds:
                    self._snapshot(consumer)
                    last_snapshot = time.monotonic()
            self._final_metrics()
            if self._since_snapshot or self.stats.snapshots == 0:
                self._snapshot(consumer)  # flushes the producer, final metrics included
            elif flush_following(self._producer) or self._errors:
                raise RuntimeError(f"final metrics not acknowledged (errors: {self._errors[:3]})")
        finally:
            consumer.close()
        return self.stats

    def _learn(self, label: dict[str, Any]) -> None:
        assert self.trainer is not None
        model = label["model"]
        for kind, record in self.trainer.learn(model, label["features"], label["label"], label["probability"],
                                               label["labelled_at_ms"]):
            self._publish(kind, record)
        self.stats.labels += 1
        self._since_snapshot += 1
        self._since_metrics[model] = self._since_metrics.get(model, 0) + 1

    def _publish(self, kind: str, record: dict[str, Any]) -> None:
        topic = METRICS_TOPIC if kind == "metrics" else DRIFT_TOPIC
        if kind == "metrics":
            self.stats.metrics += 1
            self._since_metrics[record["model"]] = 0
        else:
            self.stats.drift += 1
        if self.models is not None:
            self.models.observe(kind, record)
        self._send(topic, orjson.dumps(record), record["model"].encode(), on_delivery=self._delivered)

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def _final_metrics(self) -> None:
        """On the way out, the metrics of every model that learned since its last record."""
        assert self.trainer is not None
        for model, count in self._since_metrics.items():
            if count:
                self._publish("metrics", self.trainer.metrics(model))

    def _snapshot(self, consumer: Consumer) -> None:
        """Publish the whole state (the commit), then record the positions in the group for progress."""
        assert self.trainer is not None
        self._send(self.snapshots_topic, self.trainer.snapshot(), SNAPSHOT_KEY, on_delivery=self._delivered)
        remaining = flush_following(self._producer)
        if remaining or self._errors:
            raise RuntimeError(f"snapshot not acknowledged ({remaining} pending, errors: {self._errors[:3]})")
        self.stats.snapshots += 1
        self._since_snapshot = 0
        offsets = [TopicPartition(LABELS_TOPIC, p, o) for p, o in self.trainer.state.positions.items()]
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
