"""Is a served probability calibrated? Brier and log loss against always answering the base rate, and a
reliability table (equal-width bins of the prediction: how many, mean predicted, observed rate).

A probability a marketer can trust is one whose Brier score and log loss are no worse than the
constant that always answers the observed rate of the same predictions, and whose bins' mean
prediction matches what they observe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import log
from typing import Any

EPS = 1e-15


@dataclass(frozen=True)
class Calibration:
    n: int
    base_rate: float  # observed rate of the label
    mean_predicted: float
    brier: float
    brier_base_rate: float  # always answering the base rate
    log_loss: float
    log_loss_base_rate: float
    bins: list[dict[str, Any]]  # reliability table: lo, hi, n, mean_predicted, observed
    top_decile_predicted: float  # the tenth of predictions ranked highest (ties broken by order): mean prediction
    top_decile_observed: float  # ... and their observed rate

    @property
    def no_worse_than_base_rate(self) -> bool:
        return self.brier <= self.brier_base_rate and self.log_loss <= self.log_loss_base_rate


def _log_loss(y: Sequence[bool], p: Sequence[float]) -> float:
    total = 0.0
    for label, q in zip(y, p, strict=True):
        q = min(max(q, EPS), 1 - EPS)
        total -= log(q) if label else log(1 - q)
    return total / len(y)


def reliability_bins(y: Sequence[bool], p: Sequence[float], bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width bins of the probability (the last one includes 1.0); empty bins are listed with n = 0."""
    counts, sums, hits = [0] * bins, [0.0] * bins, [0] * bins
    for label, q in zip(y, p, strict=True):
        i = min(int(q * bins), bins - 1)
        counts[i] += 1
        sums[i] += q
        hits[i] += bool(label)
    return [{"lo": i / bins, "hi": (i + 1) / bins, "n": counts[i],
             "mean_predicted": sums[i] / counts[i] if counts[i] else None,
             "observed": hits[i] / counts[i] if counts[i] else None} for i in range(bins)]


def calibration(y: Sequence[bool], p: Sequence[float], bins: int = 10) -> Calibration | None:
    """Calibration of the probabilities ``p`` for the labels ``y``; None without predictions."""
    if not y:
        return None
    n = len(y)
    rate = sum(map(bool, y)) / n
    brier = sum((q - bool(label)) ** 2 for label, q in zip(y, p, strict=True)) / n
    top = sorted(range(n), key=lambda i: -p[i])[:max(n // 10, 1)]
    return Calibration(n, rate, sum(p) / n, brier, rate * (1 - rate), _log_loss(y, p), _log_loss(y, [rate] * n),
                       reliability_bins(y, p, bins), sum(p[i] for i in top) / len(top),
                       sum(bool(y[i]) for i in top) / len(top))
