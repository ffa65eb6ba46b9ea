"""One online model: a River learner plus Platt calibration.

Three learners, chosen per model in ``scoring.toml`` (``learner``):

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
- ``blend``: both learn every label; the score is the mean of the logistic regression's logit and
  the compressed naive-Bayes log-odds divided by :data:`NB_SPREAD` (those spread about three
  times as wide), and so are the contributions. It ranked above either learner alone on the
  predictions before the test period of the Taobao sample and of the generator.

Every score goes through online Platt calibration, then a per-bin shift of the Platt probability
learned from the recent labels (``calibration.BinShift``). ``predict`` never
changes the model (learning happens only in ``learn``), so a pickled model restored
elsewhere gives identical predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from river import compose, linear_model, naive_bayes, optim, preprocessing

from processors.scoring.calibration import BinShift, Platt, logit, sigmoid
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
    """A fresh learner of ``kind`` (the ``learner`` of a model section: ``config.LEARNERS``)."""
    if kind == "blend":
        return Blend(naive_bayes.GaussianNB(), pipeline(learning))
    return pipeline(learning) if kind == "logistic" else naive_bayes.GaussianNB()


@dataclass(frozen=True, slots=True)
class Prediction:
    raw: float  # the learner's score: probability (logistic), compressed log-odds (naive Bayes), blend score
    probability: float  # calibrated


def _log_pdf(gaussian: Any, value: float) -> float:
    # River's own floor (GaussianNB._log_gaussian_pdf), so the sum equals its joint log-likelihood.
    return naive_bayes.GaussianNB._log_gaussian_pdf(gaussian, value)  # type: ignore[no-any-return]


def _logistic_score(pipe: Any, x: dict[str, float]) -> float:
    return logit(float(pipe.predict_proba_one(x).get(True, 0.0)))


def _nb_score(nb: Any, x: dict[str, float]) -> float:
    if len(nb.class_counts) < 2:
        return 0.0
    joint = nb.joint_log_likelihood(x)
    z = joint[True] - joint[False]
    return math.copysign(math.log1p(abs(z)), z)


def _logistic_terms(pipe: Any, x: dict[str, float]) -> dict[str, float]:
    weights = pipe["lr"].weights
    return {name: weights.get(name, 0.0) * value for name, value in pipe["scale"].transform_one(x).items()}


def _nb_terms(nb: Any, x: dict[str, float]) -> dict[str, float]:
    if len(nb.class_counts) < 2:
        return {}
    yes, no = nb.gaussians[True], nb.gaussians[False]
    return {name: _log_pdf(yes.get(name), value) - _log_pdf(no.get(name), value) for name, value in x.items()}


#: The blend divides the compressed naive-Bayes log-odds by this, to bring them to the logit's spread
#: (measured on the predictions before the test period: 2.9 times as wide on Taobao, 3.3 on the generator).
NB_SPREAD = 3.0


@dataclass
class Blend:
    """Naive Bayes and the logistic regression learning the same labels (picklable)."""

    nb: Any
    lr: Any

    def learn_one(self, x: dict[str, float], label: bool) -> None:
        self.nb.learn_one(x, label)
        self.lr.learn_one(x, label)

    def score(self, x: dict[str, float]) -> float:
        return (_nb_score(self.nb, x) / NB_SPREAD + _logistic_score(self.lr, x)) / 2

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        p = sigmoid(self.score(x))
        return {False: 1.0 - p, True: p}

    def terms(self, x: dict[str, float]) -> dict[str, float]:
        nb, lr = _nb_terms(self.nb, x), _logistic_terms(self.lr, x)
        return {name: (nb.get(name, 0.0) / NB_SPREAD + lr.get(name, 0.0)) / 2 for name in nb.keys() | lr.keys()}


Inputs = dict[str, float]
#: Per learner: its score on the logit scale, and each input's contribution to it.
SCORES: dict[str, Callable[[Any, Inputs], float]] = {
    "logistic": _logistic_score, "naive_bayes": _nb_score, "blend": Blend.score}
TERMS: dict[str, Callable[[Any, Inputs], Inputs]] = {
    "logistic": _logistic_terms, "naive_bayes": _nb_terms, "blend": Blend.terms}


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
    shift: BinShift | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.pipe = learner(self.learner, self.learning)
        self.calibration = Platt(self.calibration_rate)
        self.shift = BinShift()

    @property
    def cold(self) -> bool:
        """Too few labels learned to trust the probabilities."""
        return self.learned < self.learning.min_labels

    def score(self, x: dict[str, float]) -> float:
        """The learner's uncalibrated score on the logit scale."""
        return SCORES[self.learner](self.pipe, x)

    def predict(self, x: dict[str, float]) -> Prediction:
        z = self.score(x)
        raw = float(self.pipe.predict_proba_one(x).get(True, 0.0)) if self.learner == "logistic" else z
        return Prediction(raw, self._shift().correct(self.calibration.calibrate_logit(z)))

    def _shift(self) -> BinShift:
        # A snapshot pickled before the second stage existed has none: it starts empty (no shift).
        if getattr(self, "shift", None) is None:
            self.shift = BinShift()
        return self.shift

    def learn(self, x: dict[str, float], label: bool) -> None:
        """Both calibration stages learn from the score made before this label, then the learner learns."""
        z = self.score(x)
        self._shift().learn(self.calibration.calibrate_logit(z), label)
        self.calibration.learn_logit(z, label)
        self.pipe.learn_one(x, label)
        self.learned += 1
        self.positives += int(label)

    def contributions(self, x: dict[str, float], top: int) -> dict[str, float]:
        """The ``top`` features by |contribution|, signed (positive raises the probability): weight x
        standardised value (logistic), log-likelihood ratio (naive Bayes), or the blend's mean of both."""
        if top <= 0 or not self.learned:
            return {}
        terms = TERMS[self.learner](self.pipe, x)
        if not terms:
            return {}
        ranked = sorted(terms.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
        return {name: round(value, 6) for name, value in ranked if value != 0.0}


def new_models(config: ScoringConfig) -> dict[str, OnlineModel]:
    """A fresh model per configured model name, with its learner and calibration rate."""
    from processors.scoring.config import MODELS

    return {m: OnlineModel(m, config.learning, config.section(m).learner, config.section(m).calibration_rate)
            for m in MODELS}
