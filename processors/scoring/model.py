"""One online model: a River learner plus Platt calibration.

Two learners, chosen per model in ``scoring.toml`` (``learner``):

- ``logistic``: standard scaler then logistic regression. It learns one example at a time in
  microseconds and can tell why: a feature's contribution is its weight times its
  standardised value.
- ``naive_bayes``: River's Gaussian naive Bayes, one Gaussian per class and input. Its
  statistics are exact running means and variances, so it has no learning rate to lag a
  noisy, delayed label stream (on the Taobao sample it ranks better than the logistic
  regression: ``processors/scoring/README.md``). Its score is the log-odds of the two
  classes, which double-counts correlated inputs and so runs to hundreds: it enters the
  calibration as sign(z) * log1p(|z|) (monotone, so the ranking is the naive Bayes
  ranking). A feature's contribution is its log-likelihood ratio.

Either score goes through online Platt calibration (``calibration.py``). ``predict`` never
changes the model (learning happens only in ``learn``), so a pickled model restored
elsewhere gives identical predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from river import compose, linear_model, naive_bayes, optim, preprocessing

from processors.scoring.calibration import Platt, logit
from processors.scoring.config import Learning, ScoringConfig


def pipeline(learning: Learning) -> compose.Pipeline:
    """Standard scaler then logistic regression, with the configured optimizer."""
    rate = learning.learning_rate
    optimizer = optim.Adam(rate) if learning.optimizer == "adam" else optim.SGD(rate)
    return compose.Pipeline(
        ("scale", preprocessing.StandardScaler()),
        ("lr", linear_model.LogisticRegression(optimizer=optimizer, l2=learning.l2)),
    )


def learner(kind: str, learning: Learning) -> Any:
    """A fresh River learner of ``kind`` ("logistic" or "naive_bayes", the ``learner`` of a model section)."""
    return pipeline(learning) if kind == "logistic" else naive_bayes.GaussianNB()


@dataclass(frozen=True, slots=True)
class Prediction:
    raw: float  # the learner's score: probability (logistic) or compressed log-odds (naive Bayes)
    probability: float  # calibrated


def _log_pdf(gaussian: Any, value: float) -> float:
    # River's own floor (GaussianNB._log_gaussian_pdf), so the sum equals its joint log-likelihood.
    return naive_bayes.GaussianNB._log_gaussian_pdf(gaussian, value)  # type: ignore[no-any-return]


@dataclass
class OnlineModel:
    """The learnable part of one model; picklable (that is its snapshot)."""

    name: str
    learning: Learning = field(default_factory=Learning)
    learner: str = "logistic"
    calibration_rate: float = 0.002
    learned: int = 0
    positives: int = 0
    pipe: Any = field(init=False)
    calibration: Platt = field(init=False)

    def __post_init__(self) -> None:
        self.pipe = learner(self.learner, self.learning)
        self.calibration = Platt(self.calibration_rate)

    @property
    def cold(self) -> bool:
        """Too few labels learned to trust the probabilities."""
        return self.learned < self.learning.min_labels

    def score(self, x: dict[str, float]) -> float:
        """The learner's uncalibrated score on the logit scale."""
        if self.learner == "logistic":
            return logit(float(self.pipe.predict_proba_one(x).get(True, 0.0)))
        if len(self.pipe.class_counts) < 2:
            return 0.0
        joint = self.pipe.joint_log_likelihood(x)
        z = joint[True] - joint[False]
        return math.copysign(math.log1p(abs(z)), z)

    def predict(self, x: dict[str, float]) -> Prediction:
        z = self.score(x)
        raw = float(self.pipe.predict_proba_one(x).get(True, 0.0)) if self.learner == "logistic" else z
        return Prediction(raw, self.calibration.calibrate_logit(z))

    def learn(self, x: dict[str, float], label: bool) -> None:
        """Calibration learns from the score made before this label, then the learner learns."""
        self.calibration.learn_logit(self.score(x), label)
        self.pipe.learn_one(x, label)
        self.learned += 1
        self.positives += int(label)

    def contributions(self, x: dict[str, float], top: int) -> dict[str, float]:
        """The ``top`` features by |contribution|, signed (positive raises the probability): weight x
        standardised value (logistic) or log-likelihood ratio (naive Bayes)."""
        if top <= 0 or not self.learned:
            return {}
        if self.learner == "logistic":
            scaled = self.pipe["scale"].transform_one(x)
            weights = self.pipe["lr"].weights
            terms = {name: weights.get(name, 0.0) * value for name, value in scaled.items()}
        else:
            if len(self.pipe.class_counts) < 2:
                return {}
            yes, no = self.pipe.gaussians[True], self.pipe.gaussians[False]
            terms = {name: _log_pdf(yes.get(name), value) - _log_pdf(no.get(name), value)
                     for name, value in x.items()}
        ranked = sorted(terms.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
        return {name: round(value, 6) for name, value in ranked if value != 0.0}


def new_models(config: ScoringConfig) -> dict[str, OnlineModel]:
    """A fresh model per configured model name, with its learner and calibration rate."""
    from processors.scoring.config import MODELS

    return {m: OnlineModel(m, config.learning, config.section(m).learner, config.section(m).calibration_rate)
            for m in MODELS}
