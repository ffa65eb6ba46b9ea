"""The calibration numbers equal scikit-learn's and a count by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from processors.scoring.reliability import calibration


def test_brier_log_loss_base_rate_bins_and_top_decile_match_sklearn_and_numpy() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    y = rng.uniform(0, 1, 500) < p
    c = calibration(y.tolist(), p.tolist())
    assert c is not None
    rate = y.mean()
    assert c.brier == pytest.approx(brier_score_loss(y, p))
    assert c.log_loss == pytest.approx(log_loss(y, p))
    assert c.brier_base_rate == pytest.approx(brier_score_loss(y, np.full(500, rate)))
    assert c.log_loss_base_rate == pytest.approx(log_loss(y, np.full(500, rate)))
    assert c.no_worse_than_base_rate  # calibrated by construction
    for b in c.bins:
        inside = (p >= b["lo"]) & ((p < b["hi"]) if b["hi"] < 1 else (p <= 1))
        assert b["n"] == inside.sum()
        assert b["mean_predicted"] == pytest.approx(p[inside].mean())
        assert b["observed"] == pytest.approx(y[inside].mean())
    top = np.argsort(-p)[:50]
    assert (c.top_decile_predicted, c.top_decile_observed) == (pytest.approx(p[top].mean()),
                                                               pytest.approx(y[top].mean()))
    constant = calibration(y.tolist(), [0.9] * 500)
    assert constant is not None and not constant.no_worse_than_base_rate
