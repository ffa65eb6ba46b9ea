"""Arrow tables for the scoring stage's outputs: ``scores``, ``model_metrics``, ``model_drift``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from sinks.batches import F, S, _ms, _timestamps, _ts


def scores_table(records: Sequence[dict[str, Any]], emitted_at: datetime) -> pa.Table:
    """Rows of ``scores`` from ``scores`` records."""
    return pa.table({
        "score_id": pa.array([r["score_id"] for r in records], S),
        "customer_id": pa.array([r["customer_id"] for r in records], S),
        "model": pa.array([r["model"] for r in records], S),
        "model_version": pa.array([r["model_version"] for r in records], pa.uint64()),
        "scored_at": _ts([_ms(r["scored_at"]) for r in records]),
        "probability": pa.array([r["probability"] for r in records], F),
        "band": pa.array([r["band"] for r in records], S),
        "cold_start": pa.array([r["cold_start"] for r in records], pa.bool_()),
        "top_features": pa.array([list(r["top_features"].items()) for r in records], pa.map_(S, F)),
        "emitted_at": _timestamps([emitted_at] * len(records)),
    })


def model_metrics_table(records: Sequence[dict[str, Any]], emitted_at: datetime) -> pa.Table:
    """Rows of ``model_metrics`` from ``model-metrics`` records."""
    return pa.table({
        "model": pa.array([r["model"] for r in records], S),
        "model_version": pa.array([r["model_version"] for r in records], pa.uint64()),
        "labels": pa.array([r["labels"] for r in records], pa.uint64()),
        "positives": pa.array([r["positives"] for r in records], pa.uint64()),
        "roc_auc": pa.array([r["roc_auc"] for r in records], F),
        "log_loss": pa.array([r["log_loss"] for r in records], F),
        "brier": pa.array([r["brier"] for r in records], F),
        "as_of": _ts([_ms(r["as_of"]) for r in records]),
        "emitted_at": _timestamps([emitted_at] * len(records)),
    })


def model_drift_table(records: Sequence[dict[str, Any]], emitted_at: datetime) -> pa.Table:
    """Rows of ``model_drift`` from ``model-drift`` records."""
    return pa.table({
        "drift_id": pa.array([r["drift_id"] for r in records], S),
        "model": pa.array([r["model"] for r in records], S),
        "model_version": pa.array([r["model_version"] for r in records], pa.uint64()),
        "labels": pa.array([r["labels"] for r in records], pa.uint64()),
        "detected_at": _ts([_ms(r["detected_at"]) for r in records]),
        "detector": pa.array([r["detector"] for r in records], S),
        "error_before": pa.array([r["error_before"] for r in records], F),
        "error_after": pa.array([r["error_after"] for r in records], F),
        "window": pa.array([r["window"] for r in records], pa.uint64()),
        "emitted_at": _timestamps([emitted_at] * len(records)),
    })
