"""Contracts of the scoring stage's own topics: labels, model metrics and drift (v1).

``scores`` is in ``schemas.outputs``. Model snapshots (``model-snapshots``) are pickled
trainer state, internal to the pipeline, and have no JSON contract.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Contract, Identifier, UtcDatetime

ModelName = Literal["purchase_propensity", "churn"]


class ModelLabel(Contract):
    """A held prediction with its outcome (topic ``model-labels``): what the trainer learns from."""

    customer_id: Identifier
    model: ModelName
    predicted_at_ms: int = Field(description="Prediction (profile as-of) time, epoch ms; the inputs are as of it.")
    labelled_at_ms: int = Field(description="The end of the horizon: when the label is released, for both outcomes.")
    label: bool = Field(description="Propensity: ordered within the horizon. Churn: no order within the horizon.")
    features: dict[str, float] = Field(description="Model inputs at prediction time (processors/scoring/vector.py).")
    raw_probability: float = Field(ge=0, le=1)
    probability: float = Field(ge=0, le=1, description="The calibrated probability served at prediction time.")
    model_version: int = Field(ge=0)
    ordered_at_ms: int | None = Field(None, description="The first order inside the horizon (decided the label).")


class ModelMetrics(Contract):
    """Prequential metrics of one model (topic ``model-metrics``), every N labels."""

    model: ModelName
    model_version: int = Field(ge=0, description="Labels the model had learned.")
    labels: int = Field(ge=0, description="Labels evaluated so far (each before it was learned).")
    positives: int = Field(ge=0)
    roc_auc: float | None = Field(None, description="Over probabilities binned to 1/auc_bins; None with one class.")
    log_loss: float | None = None
    brier: float | None = None
    as_of: UtcDatetime = Field(description="Event time of the newest label included.")
    schema_version: int = SCHEMA_VERSION


class ModelDrift(Contract):
    """The error distribution of a model shifted (topic ``model-drift``): ADWIN cut its window."""

    drift_id: Identifier
    model: ModelName
    model_version: int = Field(ge=0)
    labels: int = Field(ge=0)
    detected_at: UtcDatetime = Field(description="Event time of the label at which the shift was detected.")
    detector: str = "ADWIN"
    error_before: float = Field(description="Mean |label - probability| of the window before the cut.")
    error_after: float = Field(description="Mean of the window kept after the cut.")
    window: int = Field(ge=0)
    detections: int = Field(ge=1)
    schema_version: int = SCHEMA_VERSION
