"""The second calibration stage (calibration.BinShift): per tenth of the probability, the decayed mean error
shrunk by a prior, checked against numpy; and it moves an over-confident top bin onto what it observes."""

from __future__ import annotations

import numpy as np
import pytest

from processors.scoring.calibration import BinShift


def test_bin_shift_is_the_decayed_shrunk_mean_error_of_its_bin() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 3000)
    y = rng.uniform(0, 1, 3000) < p * 0.7  # over-confident everywhere: observed is 0.7 of the prediction
    shift = BinShift()
    for q, label in zip(p, y, strict=True):
        shift.learn(float(q), bool(label))
    weights = 0.9995 ** np.arange(len(p) - 1, -1, -1)  # the newest label weighs 1
    for q in (0.05, 0.45, 0.85, 0.999):
        i = min(int(q * 10), 9)
        mine = np.minimum((p * 10).astype(int), 9) == i
        expected = q + np.sum(weights[mine] * (y[mine] - p[mine])) / (np.sum(weights[mine]) + 20.0)
        assert shift.correct(q) == pytest.approx(expected, abs=1e-9)
    # the top bin predicted ~0.95 and observed ~0.66: the correction brings it within 0.05
    top = (p >= 0.9)
    assert abs(np.mean([shift.correct(float(q)) for q in p[top]]) - y[top].mean()) < 0.05
    assert BinShift().correct(0.3) == 0.3  # nothing learned: no shift
