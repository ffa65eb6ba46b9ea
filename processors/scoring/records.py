"""The records scoring emits, as plain dicts matching their contracts (built without pydantic, for speed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from processors.triggers.ids import derived_id
from schemas.base import SCHEMA_VERSION


def iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def score_record(customer_id: str, model: str, version: int, t_ms: int, probability: float, band: str,
                 cold_start: bool, top: dict[str, float]) -> dict[str, Any]:
    """A ``scores`` record (``schemas.outputs.Score``); its id is derived from customer, model and time."""
    return {"score_id": derived_id("score", customer_id, model, t_ms), "customer_id": customer_id, "model": model,
            "model_version": version, "scored_at": iso(t_ms), "probability": probability, "band": band,
            "cold_start": cold_start, "top_features": top, "schema_version": SCHEMA_VERSION}


def metrics_record(model: str, version: int, labels: int, positives: int, roc_auc: float | None,
                   log_loss: float | None, brier: float | None, as_of_ms: int) -> dict[str, Any]:
    """A ``model-metrics`` record (``schemas.models.ModelMetrics``)."""
    return {"model": model, "model_version": version, "labels": labels, "positives": positives,
            "roc_auc": roc_auc, "log_loss": log_loss, "brier": brier, "as_of": iso(as_of_ms),
            "schema_version": SCHEMA_VERSION}


def drift_record(model: str, version: int, labels: int, detected_ms: int, details: dict[str, Any]) -> dict[str, Any]:
    """A ``model-drift`` record (``schemas.models.ModelDrift``)."""
    return {"drift_id": derived_id("drift", model, labels, detected_ms), "model": model, "model_version": version,
            "labels": labels, "detected_at": iso(detected_ms), "detector": "ADWIN", **details,
            "schema_version": SCHEMA_VERSION}
