"""The purchases-only holdout benchmark: each customer's latest churn probability at the end of a
calibration period, against whether they bought again in the holdout that follows.

This is how a shop (and the repeat-purchase literature: RFM, BG/NBD) judges a churn score: replay
the history up to ``cutoff`` through features, scoring and the trainer (``replay.py``, re-scoring
included), take each customer's latest ``churn`` score made by then, and label the customer
churned when they place no order in ``(cutoff, cutoff + holdout]``. The references are computed
from the orders alone (not from the pipeline's inputs) at the cutoff: recency (days since the last
order) alone, frequency (orders) alone, and a logistic regression and a gradient boosting on
recency, frequency, monetary (mean order amount) and tenure (days since the first order), both
with 5-fold cross-validated predictions on the holdout labels themselves, so they have an advantage
the online model has not (they are fitted on the label being judged). ROC AUCs carry 95 %
customer-bootstrap intervals; the online probability's Brier score and log loss are compared with
always answering the observed churn rate, with a 10-bin reliability table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from processors.scoring.bootstrap import auc_difference, auc_interval
from processors.scoring.config import ScoringConfig
from processors.scoring.reliability import calibration
from processors.scoring.replay import SourceRecord, replay

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Rfm:
    """A customer at the cutoff, from their orders alone."""

    recency_days: float
    frequency: int
    monetary: float
    tenure_days: float


def orders_of(records: Iterable[SourceRecord]) -> dict[str, list[tuple[int, float]]]:
    """Each customer's placed orders (epoch ms, amount), sorted, read from the raw records."""
    orders: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for record in records:
        if record.topic != "orders" or record.event_time is None or b'"order_placed"' not in record.value:
            continue
        body = orjson.loads(record.value)
        orders[body["customer_id"]].append((round(record.event_time.timestamp() * 1000),
                                            float(body.get("amount") or 0.0)))
    return {c: sorted(ts) for c, ts in orders.items()}


def rfm(orders: list[tuple[int, float]], cutoff_ms: int) -> Rfm | None:
    """RFM and tenure at the cutoff; None without an order by then."""
    before = [(t, a) for t, a in orders if t <= cutoff_ms]
    if not before:
        return None
    return Rfm((cutoff_ms - before[-1][0]) / DAY_MS, len(before), sum(a for _, a in before) / len(before),
               (cutoff_ms - before[0][0]) / DAY_MS)


def churned(orders: list[tuple[int, float]], cutoff_ms: int, holdout_ms: int) -> bool:
    return not any(cutoff_ms < t <= cutoff_ms + holdout_ms for t, _ in orders)


def latest_scores(scores: list[dict[str, Any]], model: str, cutoff_ms: int) -> dict[str, float]:
    """Each customer's latest ``model`` probability scored at or before the cutoff (the ``scores`` table's view)."""
    latest: dict[str, tuple[str, float]] = {}
    cutoff = datetime.fromtimestamp(cutoff_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for s in scores:
        if s["model"] != model or s["scored_at"] > cutoff:
            continue
        previous = latest.get(s["customer_id"])
        if previous is None or s["scored_at"] >= previous[0]:
            latest[s["customer_id"]] = (s["scored_at"], s["probability"])
    return {c: p for c, (_, p) in latest.items()}


def _cross_validated(x: np.ndarray, y: np.ndarray, which: str, seed: int = 0) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)) if which == "logistic"
             else HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_leaf_nodes=7,
                                                 min_samples_leaf=50, random_state=seed))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1])


def benchmark(records: list[SourceRecord], cutoff_ms: int, holdout_ms: int, config: ScoringConfig,
              session_gap_ms: int = 1_800_000) -> dict[str, Any]:
    """The benchmark's numbers (see the module docstring), JSON-ready."""
    orders = orders_of(records)
    result = replay([r for r in records if r.event_time is not None
                     and r.event_time.timestamp() * 1000 <= cutoff_ms], config, session_gap_ms)
    online = latest_scores(result.scores, "churn", cutoff_ms)
    customers = sorted(c for c, ts in orders.items() if ts[0][0] <= cutoff_ms)
    missing = [c for c in customers if c not in online]
    scored = [c for c in customers if c in online]
    features = {c: rfm(orders[c], cutoff_ms) for c in scored}
    y = np.array([churned(orders[c], cutoff_ms, holdout_ms) for c in scored])
    p = np.array([online[c] for c in scored])
    f = [features[c] for c in scored]
    x = np.log1p(np.array([[r.recency_days, r.frequency, r.monetary, r.tenure_days] for r in f if r is not None]))
    refs = {"recency": np.array([r.recency_days for r in f if r is not None]),
            "frequency": -np.array([r.frequency for r in f if r is not None], dtype=float),
            "rfm_logistic": _cross_validated(x, y, "logistic"),
            "rfm_gbm": _cross_validated(x, y, "gbm")}
    out: dict[str, Any] = {"customers": len(scored), "without_score": len(missing), "churned": int(y.sum()),
                           "cutoff": datetime.fromtimestamp(cutoff_ms / 1000, UTC).isoformat(),
                           "holdout_days": holdout_ms / DAY_MS, "churn_horizon_days": config.churn.horizon_days,
                           "events": result.events}
    interval = auc_interval(y.tolist(), p.tolist(), scored)
    out["online"] = None if interval is None else interval.__dict__
    for name, scores in refs.items():
        ref = auc_interval(y.tolist(), scores.tolist(), scored)
        diff = auc_difference(y.tolist(), p.tolist(), scores.tolist(), scored)
        out[name] = None if ref is None else ref.__dict__
        out[f"online_minus_{name}"] = None if diff is None else diff.__dict__
    cal = calibration(y.tolist(), p.tolist())
    out["calibration"] = None if cal is None else {**cal.__dict__, "no_worse_than_base_rate":
                                                   cal.no_worse_than_base_rate}
    ref_cal = calibration(y.tolist(), refs["rfm_logistic"].tolist())
    out["rfm_logistic_brier"] = None if ref_cal is None else ref_cal.brier
    return out
