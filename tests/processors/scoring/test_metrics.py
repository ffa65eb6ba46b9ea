"""Prequential metrics equal scikit-learn's on the same predictions; bands and calibration behave."""

from __future__ import annotations

import math
import random

import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from processors.scoring.bands import band
from processors.scoring.calibration import Platt
from processors.scoring.config import ScoringError, scoring_from_dict
from processors.scoring.metrics import Prequential


def test_binned_auc_log_loss_and_brier_equal_sklearn() -> None:
    rng = random.Random(3)
    y = [rng.random() < 0.3 for _ in range(2000)]
    p = [min(max(rng.gauss(0.6 if label else 0.4, 0.2), 0.0), 1.0) for label in y]
    metrics = Prequential(bins=1000)
    for label, prob in zip(y, p, strict=True):
        metrics.update(label, prob)
    binned = [min(math.floor(prob * 1000), 999) for prob in p]
    assert metrics.roc_auc == pytest.approx(roc_auc_score(y, binned), abs=1e-12)
    assert metrics.log_loss == pytest.approx(log_loss(y, [min(max(q, 1e-15), 1 - 1e-15) for q in p]), rel=1e-9)
    assert metrics.brier == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert (metrics.labels, metrics.positives) == (2000, sum(y))


def test_auc_is_none_with_one_class() -> None:
    metrics = Prequential()
    metrics.update(True, 0.3)
    assert metrics.roc_auc is None


def test_bands_at_their_cut_offs() -> None:
    assert [band(p, 0.2, 0.5) for p in (0.0, 0.199, 0.2, 0.499, 0.5, 1.0)] == \
        ["low", "low", "medium", "medium", "high", "high"]


def test_platt_moves_a_biased_probability_towards_the_observed_rate() -> None:
    platt = Platt(rate=0.05)
    rng = random.Random(1)
    for _ in range(5000):
        platt.learn(0.5, rng.random() < 0.1)  # the model says 0.5, one in ten is positive
    assert platt.calibrate(0.5) == pytest.approx(0.1, abs=0.03)


def test_a_scoring_file_with_unknown_keys_or_crossed_cut_offs_is_refused() -> None:
    with pytest.raises(ScoringError, match="unknown parameter 'horizon'"):
        scoring_from_dict({"churn": {"horizon": 30}})
    with pytest.raises(ScoringError, match="band_medium <= band_high"):
        scoring_from_dict({"churn": {"band_medium": 0.9, "band_high": 0.5}})
    assert scoring_from_dict({"purchase_propensity": {"horizon_hours": 6}}).horizon_ms("purchase_propensity") \
        == 6 * 3_600_000


def test_a_scoring_file_naming_an_unknown_learner_or_input_set_is_refused() -> None:
    with pytest.raises(ScoringError, match="learner"):
        scoring_from_dict({"churn": {"learner": "forest"}})
    with pytest.raises(ScoringError, match="inputs"):
        scoring_from_dict({"purchase_propensity": {"inputs": "some"}})
    assert scoring_from_dict({}).purchase_propensity.learner == "blend"
