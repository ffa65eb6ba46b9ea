"""Prometheus metrics of one worker process (sink, features, scoring, trainer, triggers, messages, deliver).

:func:`instrument` wraps the hooks every :class:`~plumbing.batch_worker.BatchWorker` already
has (``poll``, ``handle``, ``flush``, ``on_assign``, ``on_revoke``) on the instance, so the
workers' code is unchanged; the hot path gains two clock reads per batch:

- ``journey_events_in_total{topic}``: records consumed (the worker's own per-topic count);
- ``journey_events_out_total{destination}``: rows inserted per ClickHouse table (the sink,
  through :func:`instrument_client`) or records produced per topic (stateful processors, the
  delivery outcomes and the sink's dead letters, the trainer's metrics, drift and snapshots);
- ``journey_dead_letters_total{reason}``, ``journey_duplicates_skipped_total{topic}``,
  ``journey_clickhouse_retries_total{table}``: read from the sink's own statistics at scrape time;
- ``journey_consumer_lag{topic,partition}``: librdkafka's committed-offset lag of each
  assigned partition (its statistics callback, every ``statistics.interval.ms``);
- ``journey_batch_seconds``, ``journey_flush_seconds``, ``journey_insert_seconds{table}``;
- ``journey_assigned_partitions``, ``journey_rebalances_total``.

The trainer adds its models' metrics (:class:`ModelMetrics`), as it publishes them on
``model-metrics`` and ``model-drift``: ``journey_model_roc_auc{model}``,
``journey_model_log_loss{model}``, ``journey_model_brier{model}`` (prequential),
``journey_model_labels_total{model}`` (labels learned) and ``journey_model_drift_total{model}``
(drifts detected), the last two counted over the model's life (they continue from its snapshot).
"""

from __future__ import annotations

import collections
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from plumbing.batch_worker import BatchWorker
from plumbing.produce import TrackingProducer
from streams.restore_progress import RestoreProgress

log = logging.getLogger(__name__)

#: Message.topic, called from C for every message of a batch.
_TOPIC = operator.methodcaller("topic")
#: Latency buckets (seconds): a batch or an insert takes milliseconds to seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    """The metrics of one worker, in a registry of its own; also the liveness and readiness state."""

    def __init__(self, role: str, lag_interval_seconds: float = 5.0) -> None:
        self.role = role
        self.lag_interval_seconds = lag_interval_seconds
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_out = Counter("journey_events_out", "Rows inserted per ClickHouse table, or records produced "
                                  "per topic.", ["destination"], registry=r)
        self.lag = Gauge("journey_consumer_lag", "Records after the group's committed offset, per assigned "
                         "partition (librdkafka statistics).", ["topic", "partition"], registry=r)
        self.batch_seconds = Histogram("journey_batch_seconds", "Time to take one consumed batch (decode, "
                                       "validate, stage or process).", buckets=BUCKETS, registry=r)
        self.flush_seconds = Histogram("journey_flush_seconds", "Time to store a batch and commit its offsets.",
                                       buckets=BUCKETS, registry=r)
        self.insert_seconds = Histogram("journey_insert_seconds", "Time of one ClickHouse insert, per table.",
                                        ["table"], buckets=BUCKETS, registry=r)
        self.assigned = Gauge("journey_assigned_partitions", "Partitions this worker owns now.", registry=r)
        self.rebalances = Counter("journey_rebalances", "Partition assignments received.", registry=r)
        Gauge("journey_worker_info", "Which worker this is.", ["role"], registry=r).labels(role).set(1)
        self.last_tick = time.monotonic()
        self.restore: RestoreProgress | None = None  # a stateful worker's changelog restore (instrument sets it)
        self.ready = False
        self.stopping = False
        self.stop_event: threading.Event | None = None  # the worker's stop signal: not ready once it is set

    # -- librdkafka statistics ----------------------------------------------------------------
    def consumer_overrides(self) -> dict[str, Any]:
        """Consumer settings that deliver librdkafka's statistics (for the lag) to :meth:`on_stats`."""
        return {"statistics.interval.ms": round(self.lag_interval_seconds * 1000), "stats_cb": self.on_stats}

    def on_stats(self, raw: str) -> None:
        """Consumer lag per assigned partition from one librdkafka statistics document."""
        try:
            stats = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        self.lag.clear()
        for topic, info in stats.get("topics", {}).items():
            for partition, p in info.get("partitions", {}).items():
                if partition == "-1" or p.get("fetch_state") != "active":
                    continue
                lag = p.get("consumer_lag", -1)
                if lag >= 0:
                    self.lag.labels(topic, partition).set(lag)

    # -- health --------------------------------------------------------------------------------
    def alive(self, timeout: float) -> bool:
        """The worker loop turned within ``timeout`` seconds, or its changelog restore read a batch within it."""
        last = self.last_tick
        if self.restore is not None and self.restore.active:
            last = max(last, self.restore.moved)
        return time.monotonic() - last < timeout

    @property
    def restoring(self) -> bool:
        return self.restore is not None and self.restore.active

    def is_ready(self) -> bool:
        """Joined the group with its partitions loaded (no restore running), and not stopping."""
        stopping = self.stopping or (self.stop_event is not None and self.stop_event.is_set())
        return self.ready and not stopping and not self.restoring


def consumed_per_topic(worker: BatchWorker) -> collections.Counter[str] | None:
    """The worker's own count of records consumed per topic, when it keeps one (the sink, stateful workers)."""
    stats = getattr(worker, "stats", None)
    for name in ("consumed_by_topic", "consumed"):
        counts = getattr(stats, name, None)
        if isinstance(counts, collections.Counter):
            return counts
    return None


def instrument(worker: BatchWorker, metrics: WorkerMetrics) -> BatchWorker:
    """Count and time ``worker``'s batches, flushes and assignments (wrapping its hooks on the instance).

    Records in per topic come from the worker's own statistics when it keeps them (read at
    scrape time: nothing per record); otherwise each batch is counted here (~0.5 us a record).
    """
    restore = getattr(worker, "restore_progress", None)
    if isinstance(restore, RestoreProgress):
        metrics.restore = restore
        metrics.registry.register(restore_collector(restore))
    poll, handle, flush, flush_soon = worker.poll, worker.handle, worker.flush, worker.flush_soon
    on_assign, on_revoke = worker.on_assign, worker.on_revoke
    batch, flushing = metrics.batch_seconds, metrics.flush_seconds
    assigned: set[tuple[str, int]] = set()
    help_text = "Records consumed, per topic."
    consumed = consumed_per_topic(worker)
    events_in = None
    if consumed is not None:
        metrics.registry.register(StatsCollector({"journey_events_in": (help_text, "topic", lambda: consumed)}))
    else:
        events_in = Counter("journey_events_in", help_text, ["topic"], registry=metrics.registry)

    def timed_poll(timeout: float) -> int:
        metrics.last_tick = time.monotonic()
        return poll(timeout)

    def timed_handle(messages: list[Any]) -> None:
        started = time.perf_counter()
        handle(messages)
        batch.observe(time.perf_counter() - started)
        if events_in is not None:
            for topic, n in collections.Counter(map(_TOPIC, messages)).items():
                events_in.labels(topic).inc(n)

    def timed_flush() -> None:
        started = time.perf_counter()
        flush()
        flushing.observe(time.perf_counter() - started)

    def timed_flush_soon() -> None:  # a worker that stores or commits in the background: its part of a flush
        started = time.perf_counter()
        flush_soon()
        flushing.observe(time.perf_counter() - started)

    def counted_assign(partitions: list[Any]) -> None:
        on_assign(partitions)
        assigned.update((tp.topic, tp.partition) for tp in partitions)
        metrics.assigned.set(len(assigned))
        metrics.rebalances.inc()
        metrics.ready = True  # restored and loaded what its partitions need: a full member of the group

    def counted_revoke(partitions: list[Any]) -> None:
        on_revoke(partitions)
        assigned.difference_update((tp.topic, tp.partition) for tp in partitions)
        metrics.assigned.set(len(assigned))

    worker.poll = timed_poll  # type: ignore[method-assign]
    worker.handle = timed_handle  # type: ignore[method-assign]
    worker.flush = timed_flush  # type: ignore[method-assign]
    if type(worker).flush_soon is not BatchWorker.flush_soon:
        worker.flush_soon = timed_flush_soon  # type: ignore[method-assign]
    worker.on_assign = counted_assign  # type: ignore[method-assign]
    worker.on_revoke = counted_revoke  # type: ignore[method-assign]
    produce = getattr(worker, "_produce", None)
    if produce is not None:  # stateful processors: every output and changelog record goes through _produce
        worker._produce = counted(produce, metrics)  # type: ignore[attr-defined]
    producer = getattr(worker, "_producer", None)
    if produce is None and isinstance(producer, TrackingProducer):  # delivery outcomes, the sink's dead letters
        producer.send_raw = counted(producer.send_raw, metrics)  # type: ignore[method-assign]
    return worker


def counted(produce: Callable[..., None], metrics: WorkerMetrics) -> Callable[..., None]:
    """``produce(topic, ...)`` that also counts each record in ``journey_events_out_total{destination=topic}``."""
    events_out = metrics.events_out
    per_topic: dict[str, Any] = {}  # labels() takes a lock and hashes the labels: once per topic, not per record

    def counted_produce(topic: str, *args: Any, **kwargs: Any) -> None:
        produce(topic, *args, **kwargs)
        counter = per_topic.get(topic)
        if counter is None:
            counter = per_topic[topic] = events_out.labels(topic)
        counter.inc()

    return counted_produce


def instrument_client(client: Any, metrics: WorkerMetrics) -> Any:
    """Time every ``insert_arrow`` of a clickhouse-connect client and count its rows per table."""
    insert = client.insert_arrow
    seconds, rows = metrics.insert_seconds, metrics.events_out

    def timed_insert(table: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = insert(table, data, *args, **kwargs)
        seconds.labels(table).observe(time.perf_counter() - started)
        rows.labels(table).inc(getattr(data, "num_rows", 0))
        return result

    client.insert_arrow = timed_insert
    return client


class StatsCollector(Collector):
    """Counters kept by a worker's own statistics (``Counter`` objects), read at scrape time."""

    def __init__(self, families: dict[str, tuple[str, str, Callable[[], dict[str, int]]]]) -> None:
        self.families = families  # metric name -> (help, label name, reader)

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, (help_text, label, read) in self.families.items():
            family = CounterMetricFamily(name, help_text, labels=[label])
            for value, count in sorted(dict(read()).items()):
                family.add_metric([str(value)], count)
            yield family


class _RestoreCollector(Collector):
    def __init__(self, restore: RestoreProgress) -> None:
        self.restore = restore

    def collect(self) -> Iterator[GaugeMetricFamily]:
        r = self.restore
        yield GaugeMetricFamily("journey_restoring", "1 while the worker restores its state from the changelog.",
                                value=int(r.active))
        yield GaugeMetricFamily("journey_restore_records", "Changelog records read by the current (or last) "
                                "restore.", value=r.records)
        yield GaugeMetricFamily("journey_restore_total_records", "About how many records the current (or last) "
                                "restore reads (high watermarks at its start; 0: unknown).", value=r.total or 0)


def restore_collector(restore: RestoreProgress) -> Collector:
    """``journey_restoring``, ``journey_restore_records`` and ``journey_restore_total_records``, read at scrape."""
    return _RestoreCollector(restore)


def sink_collector(stats: Any) -> StatsCollector:
    """Dead letters by reason, skipped duplicates by topic and ClickHouse retries by table, from a sink's
    :class:`~sinks.ingest.SinkStats`."""
    return StatsCollector({
        "journey_dead_letters": ("Records rejected to the dead-letter topic and table, per reason.", "reason",
                                 lambda: stats.dead_letters),
        "journey_duplicates_skipped": ("Events skipped because their id was already stored, per topic.", "topic",
                                       lambda: stats.duplicates),
        "journey_clickhouse_retries": ("ClickHouse calls (inserts, stored-id reads) refused and tried again, "
                                       "per table.", "table", lambda: stats.insert_retries),
    })


class ModelMetrics(Collector):
    """The latest ``model-metrics`` and ``model-drift`` record of each model, served at scrape time."""

    GAUGES = {"roc_auc": "Prequential ROC AUC", "log_loss": "Prequential log loss",
              "brier": "Prequential Brier score"}

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}  # model -> its latest metrics record
        self.drifts: dict[str, int] = {}  # model -> drifts detected over its life

    def observe(self, kind: str, record: dict[str, Any]) -> None:
        """One record the trainer publishes (``kind``: ``metrics`` or ``drift``)."""
        if kind == "metrics":
            self.latest[record["model"]] = record
        else:
            self.drifts[record["model"]] = int(record["detections"])

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, help_text in self.GAUGES.items():
            gauge = GaugeMetricFamily(f"journey_model_{name}", f"{help_text} of the model's served probabilities "
                                      "(latest model-metrics record).", labels=["model"])
            for model, record in sorted(self.latest.items()):
                if record[name] is not None:
                    gauge.add_metric([model], record[name])
            yield gauge
        labels = CounterMetricFamily("journey_model_labels", "Labels the model has learned.", labels=["model"])
        for model, record in sorted(self.latest.items()):
            labels.add_metric([model], record["labels"])
        yield labels
        drifts = CounterMetricFamily("journey_model_drift", "Drifts of the model's error detected (ADWIN).",
                                     labels=["model"])
        for model, count in sorted(self.drifts.items()):
            drifts.add_metric([model], count)
        yield drifts
