"""The purchases-only holdout benchmark's numbers equal pandas and scikit-learn on the same replay."""

from __future__ import annotations

import dataclasses

import orjson
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from processors.scoring.holdout import DAY_MS, benchmark
from processors.scoring.replay import replay
from tests.bench.holdout import generator_purchases
from tests.processors.scoring.conftest import CONFIG


def test_the_benchmark_scores_each_customers_latest_churn_probability_against_the_holdout() -> None:
    records = generator_purchases(150, 120, 5)
    config = dataclasses.replace(CONFIG, churn=dataclasses.replace(CONFIG.churn, horizon_days=14))
    newest = max(round(r.event_time.timestamp() * 1000) for r in records if r.event_time is not None)
    cutoff, holdout = newest - 30 * DAY_MS, 30 * DAY_MS
    out = benchmark(records, cutoff, holdout, config)
    # Independently: orders with pandas, the replay's scores, the latest churn score at or before the cutoff.
    orders = pd.DataFrame([{"customer": orjson.loads(r.value)["customer_id"],
                            "t": round(r.event_time.timestamp() * 1000)} for r in records
                           if b'"order_placed"' in r.value and r.event_time is not None])
    calibration = orders[orders.t <= cutoff]
    holdout_buyers = set(orders[(orders.t > cutoff) & (orders.t <= cutoff + holdout)].customer)
    scores = pd.DataFrame(replay([r for r in records if r.event_time is not None
                                  and r.event_time.timestamp() * 1000 <= cutoff], config).scores)
    scores = scores[scores.model == "churn"].copy()
    scores["t"] = pd.to_datetime(scores.scored_at).astype("int64") // 1_000_000
    latest = scores[scores.t <= cutoff].sort_values("t").groupby("customer_id").probability.last()
    customers = sorted(set(calibration.customer))
    assert out["customers"] == len(customers) and out["without_score"] == 0
    y = [c not in holdout_buyers for c in customers]
    assert out["churned"] == sum(y) and 0 < sum(y) < len(y)
    p = [latest[c] for c in customers]
    assert out["online"]["estimate"] == pytest.approx(roc_auc_score(y, p))
    recency = [cutoff - calibration[calibration.customer == c].t.max() for c in customers]
    assert out["recency"]["estimate"] == pytest.approx(roc_auc_score(y, recency))
    assert out["calibration"]["brier"] == pytest.approx(brier_score_loss(y, p))
    assert out["online"]["low"] <= out["online"]["estimate"] <= out["online"]["high"]
