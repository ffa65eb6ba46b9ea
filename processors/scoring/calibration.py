"""Platt calibration learned online: p = sigmoid(a * z + b), z = logit(raw) or a learner's log-odds.

An online logistic regression is close to calibrated on its own, but SGD with a fixed rate
lags a moving base rate and over- or under-shoots on rare classes. Two parameters, learned
from each label's prequential raw prediction (made before the model saw that label), map
the raw probability back onto the observed frequencies without touching the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import exp, log

_EPS = 1e-6


def logit(p: float) -> float:
    p = min(max(p, _EPS), 1 - _EPS)
    return log(p / (1 - p))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + exp(-z))
    e = exp(z)
    return e / (1 + e)


@dataclass
class Platt:
    """The two parameters and their SGD rate; picklable."""

    rate: float = 0.01
    a: float = 1.0
    b: float = 0.0

    def calibrate(self, raw: float) -> float:
        return self.calibrate_logit(logit(raw))

    def calibrate_logit(self, z: float) -> float:
        """The calibrated probability of a score already on the logit scale."""
        return sigmoid(self.a * z + self.b)

    def learn(self, raw: float, label: bool) -> None:
        self.learn_logit(logit(raw), label)

    def learn_logit(self, z: float, label: bool) -> None:
        """One SGD step on the log loss of the calibrated probability."""
        error = sigmoid(self.a * z + self.b) - (1.0 if label else 0.0)
        self.a -= self.rate * error * z
        self.b -= self.rate * error


@dataclass
class BinShift:
    """A second calibration stage: per tenth of the Platt probability, the recent mean error (observed minus
    predicted), shrunk towards 0 by ``prior`` pseudo-labels and forgetting old labels by ``decay`` per label.

    Platt's two parameters bend the whole curve at once; a learner whose score is not logistic in its
    true log-odds (the naive-Bayes blend) stays off at the top, where the marketer reads the scores (the
    Taobao propensity's top decile predicted 0.439 and observed 0.374). A shift inside one bin keeps the
    ranking inside it. Picklable.
    """

    bins: int = 10
    prior: float = 20.0
    decay: float = 0.9995
    n: list[float] | None = None
    error: list[float] | None = None

    def _bin(self, p: float) -> int:
        return min(max(int(p * self.bins), 0), self.bins - 1)

    def correct(self, p: float) -> float:
        if self.n is None or self.error is None:
            return p
        i = self._bin(p)
        return min(max(p + self.error[i] / (self.n[i] + self.prior), _EPS), 1 - _EPS)

    def learn(self, p: float, label: bool) -> None:
        """One label of the Platt probability ``p`` made before the label was known."""
        if self.n is None or self.error is None:
            self.n, self.error = [0.0] * self.bins, [0.0] * self.bins
        for i in range(self.bins):
            self.n[i] *= self.decay
            self.error[i] *= self.decay
        i = self._bin(p)
        self.n[i] += 1.0
        self.error[i] += (1.0 if label else 0.0) - p
