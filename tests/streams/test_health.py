"""The health endpoint's states and the metrics taken from librdkafka's statistics, without a broker."""

from __future__ import annotations

import threading
import time

import orjson

from streams.health import HealthServer
from streams.metrics import WorkerMetrics
from tests.integration.procs import scrape, status


def test_liveness_and_readiness_follow_the_worker() -> None:
    metrics = WorkerMetrics("sink")
    metrics.stop_event = threading.Event()
    with HealthServer(metrics, liveness_timeout=0.5) as server:
        assert status(f"{server.url}/healthz") == 200
        assert status(f"{server.url}/readyz") == 503, "not ready before its first assignment"
        metrics.ready = True
        assert status(f"{server.url}/readyz") == 200
        metrics.stop_event.set()
        assert status(f"{server.url}/readyz") == 503, "not ready once asked to stop"
        time.sleep(0.6)
        assert status(f"{server.url}/healthz") == 503, "a loop that stopped turning is not live"
        metrics.last_tick = time.monotonic()
        assert status(f"{server.url}/healthz") == 200
        assert status(f"{server.url}/nothing") == 404


def test_consumer_lag_comes_from_the_statistics_of_active_partitions() -> None:
    metrics = WorkerMetrics("features")
    stats = {"topics": {"orders": {"partitions": {
        "0": {"fetch_state": "active", "consumer_lag": 12},
        "1": {"fetch_state": "active", "consumer_lag": -1},  # unknown yet: not reported
        "2": {"fetch_state": "none", "consumer_lag": 99},  # not assigned to this worker
        "-1": {"fetch_state": "none", "consumer_lag": -1},  # librdkafka's internal partition
    }}}}
    metrics.on_stats(orjson.dumps(stats).decode())
    with HealthServer(metrics) as server:
        samples = scrape(server.url)
    lags = {labels: v for (name, labels), v in samples.items() if name == "journey_consumer_lag"}
    assert lags == {(("partition", "0"), ("topic", "orders")): 12.0}
    metrics.on_stats("not json")  # a bad document changes nothing and raises nothing


def test_the_trainer_serves_each_models_latest_metrics_and_its_drifts() -> None:
    from processors.scoring.records import drift_record, metrics_record
    from streams.metrics import ModelMetrics

    metrics = WorkerMetrics("trainer")
    models = ModelMetrics()
    metrics.registry.register(models)
    models.observe("metrics", metrics_record("churn", 100, 100, 10, 0.6, 0.5, 0.25, 0))
    models.observe("metrics", metrics_record("churn", 200, 200, 30, 0.7, 0.4, 0.2, 0))
    models.observe("metrics", metrics_record("purchase_propensity", 40, 40, 0, None, 0.3, 0.1, 0))
    models.observe("drift", drift_record("churn", 150, 150, 0, {"detections": 2}))
    with HealthServer(metrics, liveness_timeout=5) as server:
        page = {(name, dict(labels)["model"]): value for (name, labels), value in scrape(server.url).items()
                if name.startswith("journey_model")}
    assert page == {
        ("journey_model_roc_auc", "churn"): 0.7,  # none for a model that has seen one class only: no sample
        ("journey_model_log_loss", "churn"): 0.4, ("journey_model_log_loss", "purchase_propensity"): 0.3,
        ("journey_model_brier", "churn"): 0.2, ("journey_model_brier", "purchase_propensity"): 0.1,
        ("journey_model_labels_total", "churn"): 200, ("journey_model_labels_total", "purchase_propensity"): 40,
        ("journey_model_drift_total", "churn"): 2}
