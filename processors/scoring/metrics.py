"""Prequential evaluation in constant memory: ROC AUC, log loss and Brier score.

Each labelled example is scored before the model learns it, and the probability it was
given is folded in here. Log loss and Brier are running means. ROC AUC is exact for the
probabilities binned into ``bins`` equal-width bins (a positive and a negative in the same
bin count one half): it equals ``sklearn.metrics.roc_auc_score(y, floor(p * bins))``, which
the tests check, and needs two arrays of counts instead of every prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import log

_EPS = 1e-15


@dataclass
class Prequential:
    """Running prequential metrics of one model; picklable."""

    bins: int = 1000
    labels: int = 0
    positives: int = 0
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0
    pos_hist: list[int] = field(default_factory=list)
    neg_hist: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.pos_hist:
            self.pos_hist = [0] * self.bins
            self.neg_hist = [0] * self.bins

    def bin_of(self, p: float) -> int:
        return min(int(p * self.bins), self.bins - 1)

    def update(self, label: bool, p: float) -> None:
        """Fold in one (label, probability given before learning)."""
        y = 1.0 if label else 0.0
        self.labels += 1
        self.positives += int(label)
        clipped = min(max(p, _EPS), 1 - _EPS)
        self.log_loss_sum -= log(clipped) if label else log(1 - clipped)
        self.brier_sum += (p - y) ** 2
        (self.pos_hist if label else self.neg_hist)[self.bin_of(p)] += 1

    @property
    def log_loss(self) -> float | None:
        return self.log_loss_sum / self.labels if self.labels else None

    @property
    def brier(self) -> float | None:
        return self.brier_sum / self.labels if self.labels else None

    @property
    def roc_auc(self) -> float | None:
        """P(score of a positive > score of a negative), ties one half; None without both classes."""
        negatives = self.labels - self.positives
        if not self.positives or not negatives:
            return None
        below = 0  # negatives in lower bins
        wins = 0.0
        for pos, neg in zip(self.pos_hist, self.neg_hist, strict=True):
            wins += pos * (below + neg / 2)
            below += neg
        return wins / (self.positives * negatives)
