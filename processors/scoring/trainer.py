"""The trainer: labels in, models learned, prequential metrics, drift records and snapshots out.

There is one trainer per pipeline: every label goes through it, in arrival order, so the
model is one model. For each label it first evaluates the probability that was served for
that prediction (made before this label was learned: prequential), feeds the error to the
drift detector, then learns. Its whole state (models, metrics, detectors and the input
positions it includes) pickles into one snapshot; each model's version is the number of
labels it has learned, so a snapshot names exactly the model state that scored.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

from processors.scoring.config import MODELS, ScoringConfig
from processors.scoring.drift import DriftWatch
from processors.scoring.metrics import Prequential
from processors.scoring.model import OnlineModel, new_models
from processors.scoring.records import drift_record, metrics_record

SNAPSHOT_FORMAT = 1


@dataclass
class TrainerState:
    """What a snapshot holds; ``positions`` are the label-topic offsets already learned (partition -> next)."""

    models: dict[str, OnlineModel]
    metrics: dict[str, Prequential]
    drift: dict[str, DriftWatch]
    as_of_ms: dict[str, int] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    sequence: int = 0
    format: int = SNAPSHOT_FORMAT


class Trainer:
    """Learns from labels; ``learn`` returns the metrics and drift records that became due."""

    def __init__(self, config: ScoringConfig, state: TrainerState | None = None) -> None:
        self.config = config
        self.state = state or TrainerState(
            models=new_models(config),
            metrics={m: Prequential(config.evaluation.auc_bins) for m in MODELS},
            drift={m: DriftWatch(config.drift.delta, config.drift.grace_labels) for m in MODELS})

    @property
    def models(self) -> dict[str, OnlineModel]:
        return self.state.models

    def learn(self, model: str, x: dict[str, float], label: bool, probability: float,
              labelled_at_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """Evaluate the served probability, watch the error, learn; return due (kind, record) pairs."""
        s = self.state
        learner, metrics = s.models[model], s.metrics[model]
        metrics.update(label, probability)
        s.as_of_ms[model] = max(s.as_of_ms.get(model, labelled_at_ms), labelled_at_ms)
        out: list[tuple[str, dict[str, Any]]] = []
        drift = s.drift[model].update(abs((1.0 if label else 0.0) - probability))
        if drift is not None:
            out.append(("drift", drift_record(model, learner.learned, metrics.labels, labelled_at_ms, drift)))
        learner.learn(x, label)
        if metrics.labels % self.config.evaluation.metrics_every_labels == 0:
            out.append(("metrics", self.metrics(model)))
        return out

    def metrics(self, model: str) -> dict[str, Any]:
        """The ``model-metrics`` record of ``model`` now."""
        m = self.state.metrics[model]
        return metrics_record(model, self.state.models[model].learned, m.labels, m.positives, m.roc_auc, m.log_loss,
                              m.brier, self.state.as_of_ms.get(model, 0))

    def snapshot(self) -> bytes:
        """The whole trainer state, pickled (the value of a ``model-snapshots`` record)."""
        self.state.sequence += 1
        return pickle.dumps(self.state, pickle.HIGHEST_PROTOCOL)


def load_snapshot(data: bytes) -> TrainerState:
    """A snapshot's state; refuses a format this code does not know."""
    state = pickle.loads(data)
    if not isinstance(state, TrainerState) or state.format != SNAPSHOT_FORMAT:
        raise ValueError("not a model snapshot of a known format")
    return state
