"""Scoring parameters: typed defaults, overridden by a TOML file (``scoring.toml`` ships the defaults).

Every parameter is documented in ``scoring.toml``. A file naming an unknown section or
parameter, or a value of the wrong type, is refused with its name (``processors.config_file``,
the loader every processor's parameters go through).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.config_file import ConfigError, read_toml, sections_from_dict

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MODELS = ("purchase_propensity", "churn")
#: The online learners (``model.py``) and the input sets (``vector.py``) a model section can name.
LEARNERS = ("naive_bayes", "logistic", "blend")
INPUTS = ("compact", "churn", "all")

#: The name scoring's callers know the loader's error by.
ScoringError = ConfigError


@dataclass(frozen=True)
class Propensity:
    horizon_hours: int = 24
    hold_every_minutes: int = 60
    min_events: int = 1
    band_medium: float = 0.2
    band_high: float = 0.5
    learner: str = "blend"
    inputs: str = "compact"
    calibration_rate: float = 0.01

    @property
    def horizon_ms(self) -> int:
        return self.horizon_hours * HOUR_MS

    @property
    def hold_every_ms(self) -> int:
        return self.hold_every_minutes * 60_000


@dataclass(frozen=True)
class Churn:
    horizon_days: int = 90
    min_orders: int = 1
    hold_every_hours: int = 168
    band_medium: float = 0.5
    band_high: float = 0.8
    learner: str = "logistic"
    inputs: str = "churn"
    calibration_rate: float = 0.002

    @property
    def horizon_ms(self) -> int:
        return self.horizon_days * DAY_MS

    @property
    def hold_every_ms(self) -> int:
        return self.hold_every_hours * HOUR_MS


@dataclass(frozen=True)
class Rescore:
    every_hours: int = 24


@dataclass(frozen=True)
class Learning:
    optimizer: str = "adam"
    learning_rate: float = 0.001
    l2: float = 0.0
    min_labels: int = 100
    top_features: int = 3


@dataclass(frozen=True)
class Labels:
    allowed_lateness_minutes: int = 60

    @property
    def lateness_ms(self) -> int:
        return self.allowed_lateness_minutes * 60_000


@dataclass(frozen=True)
class Evaluation:
    metrics_every_labels: int = 1000
    auc_bins: int = 1000


@dataclass(frozen=True)
class Drift:
    delta: float = 0.002
    grace_labels: int = 200


@dataclass(frozen=True)
class Snapshots:
    every_seconds: float = 1.0


@dataclass(frozen=True)
class ScoringConfig:
    """All scoring parameters; ``load_scoring`` builds one from a file."""

    purchase_propensity: Propensity = field(default_factory=Propensity)
    churn: Churn = field(default_factory=Churn)
    learning: Learning = field(default_factory=Learning)
    rescore: Rescore = field(default_factory=Rescore)
    labels: Labels = field(default_factory=Labels)
    evaluation: Evaluation = field(default_factory=Evaluation)
    drift: Drift = field(default_factory=Drift)
    snapshots: Snapshots = field(default_factory=Snapshots)

    @property
    def rescore_every_ms(self) -> int:
        return self.rescore.every_hours * HOUR_MS

    def horizon_ms(self, model: str) -> int:
        return self.purchase_propensity.horizon_ms if model == "purchase_propensity" else self.churn.horizon_ms

    def section(self, model: str) -> Propensity | Churn:
        return self.purchase_propensity if model == "purchase_propensity" else self.churn

    def cuts(self, model: str) -> tuple[float, float]:
        """(medium, high) band cut-offs of ``model``."""
        section: Propensity | Churn = self.purchase_propensity if model == "purchase_propensity" else self.churn
        return section.band_medium, section.band_high


def scoring_from_dict(data: dict[str, Any]) -> ScoringConfig:
    """A config from parsed TOML: known sections and keys only, values of the default's type."""
    config = sections_from_dict(ScoringConfig(), data)
    for model in MODELS:
        medium, high = config.cuts(model)
        if not 0 < medium <= high < 1:
            raise ScoringError(f"[{model}] needs 0 < band_medium <= band_high < 1, not {medium}, {high}")
    for model in MODELS:
        section = config.section(model)
        if section.learner not in LEARNERS:
            raise ScoringError(f"[{model}] learner: one of {', '.join(LEARNERS)}, not {section.learner!r}")
        if section.inputs not in INPUTS:
            raise ScoringError(f"[{model}] inputs: one of {', '.join(INPUTS)}, not {section.inputs!r}")
    if config.learning.optimizer not in ("adam", "sgd"):
        raise ScoringError(f"[learning] optimizer: 'adam' or 'sgd', not {config.learning.optimizer!r}")
    return config  # type: ignore[no-any-return]


def load_scoring(path: Path | None = None) -> ScoringConfig:
    """Parameters from ``path``, or the shipped ``processors/scoring/scoring.toml``."""
    return scoring_from_dict(read_toml(path, "processors.scoring", "scoring.toml"))
