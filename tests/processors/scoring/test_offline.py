"""The offline competitors tune on time, not on the test period; the AUC and its bootstrap interval are exact."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from processors.scoring.bootstrap import auc_difference, auc_interval, roc_auc
from processors.scoring.offline import MAX_ITER, Rows, fit_gbm, fit_logistic, validation_split

HOUR = 3_600_000


def synthetic(n: int, seed: int) -> tuple[Rows, np.ndarray]:
    """One informative input among three noisy ones, hourly predictions; and their customers."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] * 0.8 - 1.0)))
    return Rows(x, y, np.arange(n, dtype=np.int64) * HOUR), rng.integers(0, n // 4, n)


def test_roc_auc_equals_sklearn_with_ties_and_weights() -> None:
    rng = np.random.default_rng(4)
    y = rng.random(500) < 0.3
    scores = np.round(rng.normal(size=500) + y, 1)  # rounded: many ties
    weights = rng.integers(0, 4, 500)
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert roc_auc(y, scores, weights) == pytest.approx(roc_auc_score(y, scores, sample_weight=weights), abs=1e-12)


def test_the_bootstrap_interval_separates_a_better_scorer_and_not_an_equal_one() -> None:
    rows, customers = synthetic(2000, 1)
    ids = [str(c) for c in customers]
    informative, noise = rows.x[:, 0], rows.x[:, 1]
    better = auc_difference(rows.y, informative, noise, ids, replicates=200)
    assert better is not None and better.excludes_zero() and better.low < better.estimate < better.high
    assert better.estimate == pytest.approx(roc_auc(rows.y, informative) - roc_auc(rows.y, noise))
    assert (round(better.estimate, 4), round(better.low, 4), round(better.high, 4)) == (0.2309, 0.1986, 0.2652)
    same = auc_difference(rows.y, informative, informative, ids, replicates=200)
    assert same is not None and (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    assert auc_difference([True, True], [0.1, 0.2], [0.3, 0.4], ["a", "b"]) is None


def test_validation_comes_after_the_fit_part_and_fits_only_labels_known_before_it() -> None:
    rows, _ = synthetic(1000, 2)
    split = validation_split(rows, 24 * HOUR)
    assert split is not None
    fit, validation = split
    start = rows.t_ms[validation].min()
    assert rows.t_ms[fit].max() + 24 * HOUR < start  # every fit label was known before validation began
    assert (int(fit.sum()), int(validation.sum())) == (726, 250)
    one_class = Rows(rows.x, np.zeros(1000, dtype=bool), rows.t_ms)
    assert validation_split(one_class, HOUR) is None


def test_tuning_stops_boosting_early_and_regularises_on_noise() -> None:
    rows, _ = synthetic(1500, 3)
    gbm, logistic = fit_gbm(rows, HOUR), fit_logistic(rows, HOUR)
    assert int(gbm.settings.rsplit("rounds=", 1)[1]) < MAX_ITER, "validation stopped the boosting early"
    assert gbm.settings == "learning_rate=0.1, max_leaf_nodes=3, min_samples_leaf=20, l2_regularization=1.0, rounds=12"
    assert logistic.settings == "C=0.001"
    test, _ = synthetic(1000, 9)
    truth = roc_auc(test.y, test.x[:, 0])  # the informative input alone ranks as well as anything can
    assert (round(truth, 4), round(roc_auc(test.y, gbm.scores(test.x)), 4),
            round(roc_auc(test.y, logistic.scores(test.x)), 4)) == (0.6862, 0.6756, 0.6823)


def test_the_interval_is_the_percentile_interval_of_sklearns_weighted_auc_over_customer_resamples() -> None:
    """auc_interval against an independent computation: the same customer draws, sklearn's weighted ROC AUC."""
    rng = np.random.default_rng(5)
    customers = [f"c{i % 40}" for i in range(300)]
    y = rng.random(300) < 0.3
    scores = np.round(rng.random(300) + 0.4 * y, 2)  # rounded: ties, counted one half by both
    got = auc_interval(y, scores, customers, replicates=60, seed=3)
    ids, index = np.unique(np.asarray(customers), return_inverse=True)
    draws = np.random.default_rng(3)
    values = []
    for _ in range(60):
        weights = np.bincount(draws.integers(0, len(ids), len(ids)), minlength=len(ids))[index]
        kept = weights > 0
        if y[kept].any() and not y[kept].all():
            values.append(roc_auc_score(y[kept], scores[kept], sample_weight=weights[kept]))
    assert got is not None and got.estimate == pytest.approx(roc_auc_score(y, scores))
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])))
