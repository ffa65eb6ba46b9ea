"""The churn inputs are the customer's RFM, tenure and buy-till-you-die prior as of each scoring time (re-scoring
timers included), equal to a pandas computation from the orders alone; the evaluation's churn baselines read
them (recency AUC equals scikit-learn's on the same test predictions)."""

from __future__ import annotations

import dataclasses
from math import expm1, log1p

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from processors.scoring.evaluate import evaluate_model
from processors.scoring.replay import ReplayResult, replay
from processors.scoring.vector import CHURN
from tests.bench.holdout import generator_purchases
from tests.processors.scoring.conftest import CONFIG

DAY_MS = 86_400_000
CHURN_CONFIG = dataclasses.replace(CONFIG, churn=dataclasses.replace(CONFIG.churn, horizon_days=14))


@pytest.fixture(scope="module")
def purchases() -> tuple[pd.DataFrame, ReplayResult]:
    records = generator_purchases(120, 100, 5)
    orders = pd.DataFrame([{"customer": b["customer_id"], "t": round(r.event_time.timestamp() * 1000),
                            "amount": float(b.get("amount") or 0.0)}
                           for r in records if b'"order_placed"' in r.value and r.event_time is not None
                           for b in [orjson.loads(r.value)]])
    return orders, replay(records, CHURN_CONFIG)


def _alive_logit(x: int, t_x: float, big_t: float, r: float = 1.0, a: float = 60.0) -> float:
    """Pareto/NBD with r = s and alpha = beta: P(alive) = 1 / (1 + s/(r+s+x) (((a+T)/(a+t_x))^(r+s+x) - 1))."""
    p_alive = 1.0 / (1.0 + r / (2 * r + x) * (((a + big_t) / (a + t_x)) ** (2 * r + x) - 1.0))
    return float(np.log(p_alive / (1.0 - p_alive)))


def test_churn_inputs_are_rfm_tenure_and_the_prior_at_the_scoring_time(purchases: tuple[pd.DataFrame, ReplayResult]
                                                                      ) -> None:
    orders, result = purchases
    samples = [s for s in result.samples if s.model == "churn"]
    assert samples and set(samples[0].x) == set(CHURN)
    by_customer = {c: g.sort_values("t") for c, g in orders.groupby("customer")}
    aged = 0
    for s in samples:
        before = by_customer[s.customer_id][by_customer[s.customer_id].t <= s.predicted_at_ms]
        recency = (s.predicted_at_ms - before.t.max()) / DAY_MS
        tenure = (s.predicted_at_ms - before.t.min()) / DAY_MS
        t_x = (before.t.max() - before.t.min()) / DAY_MS
        aged += recency >= 1
        assert s.x["recency_log"] == pytest.approx(log1p(recency), abs=1e-9)
        assert s.x["frequency_log"] == pytest.approx(log1p(len(before)), abs=1e-9)
        assert s.x["tenure_log"] == pytest.approx(log1p(tenure), abs=1e-9)
        assert s.x["monetary_log"] == pytest.approx(log1p(before.amount.sum() / len(before)), abs=1e-6)
        # scored at the last order: certainly alive, a log-odds capped at -log(1e-12)
        expected = _alive_logit(len(before) - 1, t_x, tenure) if tenure > t_x else -np.log(1e-12)
        assert s.x["alive_logit"] == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert s.x["single_order"] == float(len(before) == 1)
        assert s.x["recency_30d"] == float(recency <= 30)
    assert aged > len(samples) // 4  # re-scoring timers: ages grow between orders


def test_the_churn_baselines_read_the_churn_inputs(purchases: tuple[pd.DataFrame, ReplayResult]) -> None:
    orders, result = purchases
    samples = [s for s in result.samples if s.model == "churn"]
    row = evaluate_model("churn", samples, CHURN_CONFIG.churn.horizon_ms)
    t_split = pd.Timestamp(row.split_at).value // 1_000_000
    test = sorted((s for s in samples if s.predicted_at_ms > t_split and
                   s.predicted_at_ms + CHURN_CONFIG.churn.horizon_ms <= max(x.labelled_at_ms for x in samples)),
                  key=lambda s: (s.predicted_at_ms, s.customer_id))
    assert len(test) == row.test
    y = [s.label for s in test]
    recency = [s.predicted_at_ms - orders[(orders.customer == s.customer_id) & (orders.t <= s.predicted_at_ms)].t.max()
               for s in test]
    counts = [-len(orders[(orders.customer == s.customer_id) & (orders.t <= s.predicted_at_ms)]) for s in test]
    assert row.recency == pytest.approx(roc_auc_score(y, recency), abs=1e-9)
    assert row.frequency == pytest.approx(roc_auc_score(y, counts), abs=1e-9)
    assert row.rfm_logistic is not None and set(row.intervals) >= {"online", "recency", "frequency", "rfm_logistic",
                                                                    "offline_gbm"}
    _ = expm1
