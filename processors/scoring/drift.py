"""Drift of a model's error: ADWIN (river.drift) on |label - probability| of each prequential prediction.

ADWIN keeps a window of recent errors and cuts it when two sub-windows differ by more than
its confidence bound (``delta``) allows: the error distribution has shifted. Each cut is a
drift record (topic ``model-drift``, table ``model_drift``) with the mean error before and
after, so an operator can tell a model getting worse from one getting better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from river.drift import ADWIN


@dataclass
class DriftWatch:
    """One model's detector; picklable."""

    delta: float = 0.002
    grace_labels: int = 200
    seen: int = 0
    detections: int = 0
    detector: ADWIN = field(init=False)

    def __post_init__(self) -> None:
        self.detector = ADWIN(delta=self.delta)

    def update(self, error: float) -> dict[str, Any] | None:
        """Fold in one error; the drift's details when the window was cut (after the grace period)."""
        self.seen += 1
        before = self.detector.estimation
        self.detector.update(error)
        if not self.detector.drift_detected or self.seen <= self.grace_labels:
            return None
        self.detections += 1
        return {"error_before": before, "error_after": self.detector.estimation,
                "window": int(self.detector.width), "detections": self.detections}
