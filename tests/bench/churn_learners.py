"""How the churn learner and its inputs were chosen: a fast simulation of the online churn model on
purchases-only histories (``python -m tests.bench.churn_learners``).

The replay (``processors/scoring/holdout.py``) takes minutes per dataset; this takes seconds, so many
input sets and learners can be compared. It reproduces what the online model learns from: a prediction
held per customer at each order and then weekly (``hold_every_hours`` 168), labelled churned when no
order follows within the horizon, learned once its horizon ends (event time); the model as of the cutoff
(every label released by then, learned in release order) scores each customer at the cutoff, judged
against "no order in the holdout". The inputs are ``processors.scoring.vector.purchase_inputs`` of the
customer's order times and amounts, the same function the scorer uses.

Datasets (none is, or is drawn from, a dataset any target is judged on):
- the generator's orders alone (800 customers, 400 days, seed 7; holdout the last 150 days);
- three synthetic "buy till you die" populations (seeds 1-3): gamma-heterogeneous Poisson purchase
  rates and gamma-heterogeneous exponential lifetimes, first purchases spread over the first 120 days
  of a 540-day history, holdout the last 180 days;
- Olist's orders (73 repeat buyers: a check, not a guide).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from processors.scoring.vector import purchase_inputs

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS

Orders = dict[str, list[tuple[int, float]]]


def synthetic(seed: int, customers: int = 1000, days: int = 540) -> Orders:
    """A buy-till-you-die population (see the module docstring); times in epoch ms from 2020-01-01."""
    rng = np.random.default_rng(seed)
    start = 1_577_836_800_000
    out: Orders = {}
    for i in range(customers):
        rate = rng.gamma(0.7, 1 / 25.0)  # purchases per day: mean 0.028 (one a month), heavy tail
        death = rng.gamma(0.8, 1 / 0.004)  # mean lifetime 200 days
        spend = rng.gamma(3.0, 20.0)
        t = rng.uniform(0, 120)
        end = min(t + death, days)
        orders = []
        while t < end:
            orders.append((start + round(t * DAY_MS), round(spend * rng.gamma(4.0, 0.25), 2)))
            t += rng.exponential(1 / rate) if rate > 0 else days
        out[f"s{seed}-{i}"] = orders
    return out


def generator_orders(customers: int = 800, days: int = 400, seed: int = 7) -> Orders:
    from processors.scoring.holdout import orders_of
    from streams.sources.generator import Generator

    return orders_of(r for r in Generator(customers, days, seed).records() if r.topic == "orders")


def olist_orders() -> Orders:
    from pathlib import Path

    from processors.scoring.holdout import orders_of
    from streams.sources import open_source
    from tests.bench.holdout import MAPPING, purchases_csv

    path = Path("/tmp/olist_purchases_learners.csv")
    purchases_csv(Path(__file__).resolve().parents[3] / "shared/datasets/olist", path)
    records, _ = open_source(f"csv:{path}", mapping=MAPPING)
    return orders_of(records)


def examples(orders: Orders, cutoff: int, horizon: int) -> tuple[list[dict[str, float]], list[bool], list[int]]:
    """Held predictions (at each order, then weekly) whose horizon ended by the cutoff, in release order."""
    rows: list[tuple[int, dict[str, float], bool]] = []
    for history in orders.values():
        times = [t for t, _ in history]
        held: list[int] = []
        for t in times:
            if t > cutoff - horizon:
                break
            if held and t < held[-1] + WEEK_MS:
                continue
            held.append(t)
            nxt = t + WEEK_MS
            following = [s for s in times if s > t]
            until = min(following[0] if following else cutoff, cutoff - horizon + 1)
            while nxt < until:
                held.append(nxt)
                nxt += WEEK_MS
        for t in sorted(set(held)):
            before = [(s, a) for s, a in history if s <= t]
            label = not any(t < s <= t + horizon for s in times)
            rows.append((t + horizon, purchase_inputs(before, t), label))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows]


def test_set(orders: Orders, cutoff: int, holdout: int) -> tuple[list[dict[str, float]], np.ndarray, list[Any]]:
    xs, ys, raw = [], [], []
    for history in orders.values():
        before = [(s, a) for s, a in history if s <= cutoff]
        if not before:
            continue
        xs.append(purchase_inputs(before, cutoff))
        ys.append(not any(cutoff < s <= cutoff + holdout for s, _ in history))
        raw.append(before)
    return xs, np.array(ys), raw


def shipped(orders: Orders, holdout_days: int) -> dict[str, float]:
    """The shipped churn model (learner, ``churn`` inputs, horizon, calibration of ``scoring.toml``; a purchases-only
    shop leaves the behavioural inputs at 0) at the cutoff against recency alone and the RFM logistic regression
    cross-validated on the holdout labels: ROC AUCs, and the online probability's Brier and base-rate Brier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from processors.scoring.config import load_scoring
    from processors.scoring.model import new_models
    from processors.scoring.vector import CHURN

    config = load_scoring()
    last = max(t for h in orders.values() for t, _ in h)
    cutoff = last - holdout_days * DAY_MS
    train, y, _ = examples(orders, cutoff, config.churn.horizon_ms)
    test, yt, _ = test_set(orders, cutoff, holdout_days * DAY_MS)
    model = new_models(config)["churn"]
    for x, label in zip(train, y, strict=True):
        model.learn({n: x.get(n, 0.0) for n in CHURN}, label)
    p = np.array([model.predict({n: x.get(n, 0.0) for n in CHURN}).probability for x in test])
    rfm = np.array([[x[n] for n in INPUT_SETS["rfm"]] for x in test])
    cv = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), rfm, yt,
                           cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    return {"online": auc(yt, p), "recency": auc(yt, np.array([x["recency_log"] for x in test])),
            "rfm_logistic": auc(yt, cv), "brier": float(np.mean((p - yt) ** 2)),
            "brier_base_rate": float(yt.mean() * (1 - yt.mean())), "customers": len(yt), "churned": int(yt.sum())}


def river_model(names: list[str], train: list[dict[str, float]], y: list[bool], kind: str) -> Any:
    from processors.scoring.config import Learning
    from processors.scoring.model import OnlineModel

    model = OnlineModel("churn", Learning(), kind, 0.002)
    for x, label in zip(train, y, strict=True):
        model.learn({n: x[n] for n in names}, label)
    return model


INPUT_SETS: dict[str, list[str]] = {
    "rfm": ["recency_log", "frequency_log", "monetary_log", "tenure_log"],
    "rfm+alive": ["recency_log", "frequency_log", "monetary_log", "tenure_log", "alive_logit"],
    "rfm+alive+ratio": ["recency_log", "frequency_log", "monetary_log", "tenure_log", "alive_logit",
                        "recency_per_gap"],
    "rfm+alive+bins": ["recency_log", "frequency_log", "monetary_log", "tenure_log", "alive_logit",
                       "recency_7d", "recency_30d", "recency_90d", "recency_180d", "recency_365d", "single_order"],
    "purchases": None,  # type: ignore[dict-item]  # every purchase input
}


#: The input sets also learned by the River logistic regression (slow; the batch LR approximates the rest).
RIVER_SETS = ("rfm", "rfm+alive+ratio", "purchases")


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def run(name: str, orders: Orders, holdout_days: int, horizon_days: int = 90) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    last = max(t for h in orders.values() for t, _ in h)
    cutoff = last - holdout_days * DAY_MS
    train, y, _ = examples(orders, cutoff, horizon_days * DAY_MS)
    test, yt, _ = test_set(orders, cutoff, holdout_days * DAY_MS)
    print(f"\n{name}: {len(train)} training labels ({sum(y)} churned), {len(test)} customers, "
          f"{int(yt.sum())} churned in the holdout (rate {yt.mean():.3f})")
    rec = np.array([x["recency_log"] for x in test])
    freq = -np.array([x["frequency_log"] for x in test])
    print(f"  recency alone {auc(yt, rec):.4f}   frequency alone {auc(yt, freq):.4f}   "
          f"alive prior alone {auc(yt, -np.array([x['alive_logit'] for x in test])):.4f}")
    rfm = np.array([[x[n] for n in INPUT_SETS["rfm"]] for x in test])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    cv = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), rfm, yt, cv=folds,
                           method="predict_proba")[:, 1]
    print(f"  RFM-LR CV on holdout labels {auc(yt, cv):.4f}")
    all_names = sorted(train[0])
    for set_name, names in INPUT_SETS.items():
        names = names or all_names
        xa = np.array([[x[n] for n in names] for x in train])
        xt = np.array([[x[n] for n in names] for x in test])
        batch = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xa, y).predict_proba(xt)[:, 1]
        gbm = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_leaf_nodes=7,
                                             min_samples_leaf=50, random_state=0).fit(xa, y).predict_proba(xt)[:, 1]
        line = f"  {set_name:18s} batch LR {auc(yt, batch):.4f}  GBM {auc(yt, gbm):.4f}"
        for kind in (("logistic",) if set_name in RIVER_SETS else ()):
            model = river_model(names, train, y, kind)
            p = np.array([model.predict({n: x[n] for n in names}).probability for x in test])
            base = np.full(len(yt), yt.mean())
            line += (f"  river {kind} {auc(yt, p):.4f} (brier {np.mean((p - yt) ** 2):.4f} vs "
                     f"{np.mean((base - yt) ** 2):.4f}, mean p {p.mean():.3f})")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--which", default="generator,synthetic,olist")
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--shipped", action="store_true", help="only the shipped churn model on the generator")
    args = parser.parse_args()
    if args.shipped:
        print(shipped(generator_orders(), 150))
        return
    which = args.which.split(",")
    if "synthetic" in which:
        for seed in (1, 2, 3):
            run(f"synthetic seed {seed}", synthetic(seed), 180, args.horizon_days)
    if "generator" in which:
        run("generator orders (800, 400 d, seed 7)", generator_orders(), 150, args.horizon_days)
    if "olist" in which:
        run("olist orders", olist_orders(), 180, args.horizon_days)


if __name__ == "__main__":
    main()
