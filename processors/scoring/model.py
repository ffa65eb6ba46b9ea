"""One online model: a River pipeline (standard scaler, logistic regression) plus Platt calibration.

Logistic regression is chosen because it learns one example at a time in microseconds,
is stable under a delayed, drifting label stream, and can tell why: the contribution of a
feature to a score is its weight times its standardised value, which a score carries as
``top_features``. ``predict`` never changes the model (River pipelines learn only in
``learn``), so a pickled model restored elsewhere gives identical predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from river import compose, linear_model, optim, preprocessing

from processors.scoring.calibration import Platt
from processors.scoring.config import Learning


def pipeline(learning: Learning) -> compose.Pipeline:
    """Standard scaler then logistic regression, with the configured optimizer."""
    rate = learning.learning_rate
    optimizer = optim.Adam(rate) if learning.optimizer == "adam" else optim.SGD(rate)
    return compose.Pipeline(
        ("scale", preprocessing.StandardScaler()),
        ("lr", linear_model.LogisticRegression(optimizer=optimizer, l2=learning.l2)),
    )


@dataclass(frozen=True, slots=True)
class Prediction:
    raw: float  # the pipeline's probability
    probability: float  # calibrated


@dataclass
class OnlineModel:
    """The learnable part of one model; picklable (that is its snapshot)."""

    name: str
    learning: Learning = field(default_factory=Learning)
    learned: int = 0
    positives: int = 0
    pipe: compose.Pipeline = field(init=False)
    calibration: Platt = field(init=False)

    def __post_init__(self) -> None:
        self.pipe = pipeline(self.learning)
        self.calibration = Platt(self.learning.calibration_rate)

    @property
    def cold(self) -> bool:
        """Too few labels learned to trust the probabilities."""
        return self.learned < self.learning.min_labels

    def predict(self, x: dict[str, float]) -> Prediction:
        raw = float(self.pipe.predict_proba_one(x).get(True, 0.0))
        return Prediction(raw, self.calibration.calibrate(raw))

    def learn(self, x: dict[str, float], label: bool) -> None:
        """Calibration learns from the prediction made before this label, then the pipeline learns."""
        raw = float(self.pipe.predict_proba_one(x).get(True, 0.0))
        self.calibration.learn(raw, label)
        self.pipe.learn_one(x, label)
        self.learned += 1
        self.positives += int(label)

    def contributions(self, x: dict[str, float], top: int) -> dict[str, float]:
        """The ``top`` features by |weight x standardised value|, signed (positive raises the probability)."""
        if top <= 0 or not self.learned:
            return {}
        scaled = self.pipe["scale"].transform_one(x)
        weights = self.pipe["lr"].weights
        terms = {name: weights.get(name, 0.0) * value for name, value in scaled.items()}
        ranked = sorted(terms.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
        return {name: round(value, 6) for name, value in ranked if value != 0.0}
