"""Confidence intervals for a difference of two ROC AUCs on the same predictions: a customer bootstrap.

The predictions of one customer are not independent (a busy customer has many), so the
bootstrap resamples customers, not predictions: each replicate draws as many customers as
the test period has, with replacement, and weighs every prediction by how often its
customer was drawn. Both scorers are evaluated on the same replicate (paired), and the
interval is the percentile interval of the replicated differences. A replicate with one
class only is skipped. The seed is fixed, so the interval is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate and its (low, high) percentile interval."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def roc_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Exact (weighted) ROC AUC, ties counting one half: sklearn's value in a fraction of its time."""
    w = np.ones(len(y)) if weights is None else weights.astype(float)
    _, group = np.unique(scores, return_inverse=True)
    positives = np.bincount(group, weights=w * y)
    negatives = np.bincount(group, weights=w * ~y)
    below = np.cumsum(negatives) - negatives
    return float((positives * (below + negatives / 2)).sum() / (positives.sum() * negatives.sum()))


def _resamples(y: np.ndarray, customers: Sequence[str], replicates: int, seed: int) -> Iterator[np.ndarray]:
    """Row weights of each customer-bootstrap replicate that draws both classes (others are skipped)."""
    ids, index = np.unique(np.asarray(customers), return_inverse=True)
    rng = np.random.default_rng(seed)
    for _ in range(replicates):
        weights = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))[index]
        drawn = weights > 0
        if y[drawn].any() and not y[drawn].all():
            yield weights


def _interval(estimate: float, values: list[float], level: float) -> Interval:
    if not values:
        return Interval(estimate, float("nan"), float("nan"))
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def auc_difference(labels: Sequence[bool], a: Sequence[float], b: Sequence[float], customers: Sequence[str],
                   replicates: int = 1000, level: float = 0.95, seed: int = 0) -> Interval | None:
    """AUC(a) - AUC(b) with its customer-bootstrap interval; None with one class only."""
    y = np.asarray(labels, dtype=bool)
    if not y.any() or y.all():
        return None
    sa, sb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diffs = [roc_auc(y, sa, w) - roc_auc(y, sb, w) for w in _resamples(y, customers, replicates, seed)]
    return _interval(roc_auc(y, sa) - roc_auc(y, sb), diffs, level)


def auc_interval(labels: Sequence[bool], scores: Sequence[float], customers: Sequence[str],
                 replicates: int = 1000, level: float = 0.95, seed: int = 0) -> Interval | None:
    """ROC AUC of one scorer with its customer-bootstrap interval; None with one class only."""
    y = np.asarray(labels, dtype=bool)
    if not y.any() or y.all():
        return None
    s = np.asarray(scores, dtype=float)
    values = [roc_auc(y, s, w) for w in _resamples(y, customers, replicates, seed)]
    return _interval(roc_auc(y, s), values, level)
