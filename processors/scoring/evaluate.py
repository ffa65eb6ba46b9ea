"""The evaluation table: the online model against a recency heuristic and an offline batch model.

From the labelled predictions of a replay (``replay.Sample``), per model:

- online: the probability served at prediction time (prequential: made before the label
  was learned), over all labels and over the test period;
- recency: a score from the time since the customer's latest order only (the R of RFM):
  propensity ranks recent buyers first (never ordered: last), churn ranks long-gone
  buyers first;
- offline: two batch models on the same inputs (``offline.py``): scikit-learn
  ``HistGradientBoostingClassifier`` and a standardised logistic regression, each tuned (settings,
  boosting rounds, L2 strength) on a time-based validation period inside the training period. The
  time-based split: the test period is the predictions after the split time ``T`` (the ``split``
  quantile of prediction times); the offline models train only on predictions whose horizon ended
  by ``T`` (``predicted_at + horizon <= T``), so no training label is known later than ``T`` and
  the selection does not depend on the outcome. The target is judged against the better of the two
  on the test period (``offline``), the stricter comparison.
- frequency (orders so far) alone, and a logistic regression on recency, frequency, monetary
  (average order value, when the model's inputs have it) and tenure (hours since first seen),
  trained on the same training period (``rfm_logistic``);
- differences: online minus recency and online minus the best offline model, with a 95 % customer
  bootstrap interval (``bootstrap.py``); every AUC of the test period has its own interval too
  (``intervals``);
- calibration of the served probability on the test period (``reliability.py``): Brier and log
  loss against always answering the test period's observed rate, and a 10-bin reliability table.

The split and the test period use only the predictions whose horizon ended by the end of the
replay (the latest label time): a later prediction can only have the label that comes early (an
order within the horizon), never the one that needs the whole horizon to pass, so including it
would leave the test period with one outcome (on 240 days with a 90-day churn horizon, no churned
customer at all). ``online_all`` keeps every labelled prediction.

Every model is compared on the same test predictions. ROC AUC is sklearn's, exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import expm1
from typing import Any

from processors.scoring.bootstrap import Interval, auc_difference, auc_interval
from processors.scoring.config import MODELS, ScoringConfig
from processors.scoring.offline import fit_gbm, fit_logistic, rows
from processors.scoring.reliability import Calibration, calibration
from processors.scoring.replay import Sample

#: The issue's target: the online model beats the recency heuristic and comes within this much ROC AUC
#: of the best offline model.
TARGET_GAP = 0.03


@dataclass(frozen=True)
class ModelEvaluation:
    model: str
    labels: int
    positives: int
    online_all: float | None
    train: int = 0
    test: int = 0
    test_positives: int = 0
    online: float | None = None
    recency: float | None = None
    offline_gbm: float | None = None
    offline_logistic: float | None = None
    gbm_settings: str = ""
    logistic_settings: str = ""
    online_minus_recency: Interval | None = None
    online_minus_offline: Interval | None = None  # against the better offline model on the test period
    frequency: float | None = None
    rfm_logistic: float | None = None
    intervals: dict[str, Interval | None] = dataclasses.field(default_factory=dict)  # AUC of each scorer
    calibration: Calibration | None = None  # of the served probability on the test period
    split_at: str = ""  # the time split T (ISO), test period: predictions after it
    test_from: str = ""
    test_to: str = ""
    note: str = ""

    @property
    def offline(self) -> float | None:
        """The better of the two offline models on the test period (the stricter comparison)."""
        scores = [a for a in (self.offline_gbm, self.offline_logistic) if a is not None]
        return max(scores) if scores else None

    @property
    def target_met(self) -> bool | None:
        """Beats recency and is within ``TARGET_GAP`` of the best offline model (None: not measurable)."""
        if self.online is None or self.recency is None or self.offline is None:
            return None
        return self.online > self.recency and self.online >= self.offline - TARGET_GAP

    def as_dict(self) -> dict[str, Any]:
        out = {k: (dataclasses.asdict(v) if isinstance(v, Interval) else v) for k, v in self.__dict__.items()}
        out["intervals"] = {k: None if v is None else dataclasses.asdict(v) for k, v in self.intervals.items()}
        if self.calibration is not None:
            out["calibration"] = {**dataclasses.asdict(self.calibration),
                                  "no_worse_than_base_rate": self.calibration.no_worse_than_base_rate}
        return {**out, "offline": self.offline, "target_met": self.target_met}


def _recency_hours(x: dict[str, float]) -> float | None:
    """Hours since the latest order from either input set (``churn``: days as log1p; others: hours as log1p)."""
    if "recency_log" in x:
        return expm1(x["recency_log"]) * 24 if x.get("frequency_log", 0.0) > 0 else None
    return expm1(x["hours_since_last_order"]) if x.get("has_last_order") else None


def recency_score(model: str, x: dict[str, float]) -> float:
    """The heuristic: hours since the latest order, oriented per model."""
    hours = _recency_hours(x)
    if hours is None:
        return -1e12 if model == "purchase_propensity" else 1e12  # never ordered: last, or most gone
    return -hours if model == "purchase_propensity" else hours


def frequency_score(model: str, x: dict[str, float]) -> float:
    """Orders so far (log1p in either input set), oriented per model: many orders, likely to buy, unlikely to
    churn."""
    orders = x.get("frequency_log", x.get("orders_total", 0.0))
    return orders if model == "purchase_propensity" else -orders


#: The RFM inputs and tenure, as each input set names them (monetary only when the model's inputs have it).
RFM = ("hours_since_last_order", "has_last_order", "orders_total", "average_order_value", "hours_since_first_seen")
RFM_PURCHASES = ("recency_log", "frequency_log", "monetary_log", "tenure_log")


def rfm_logistic(train: list[Sample], test: list[Sample]) -> list[float] | None:
    """A standardised logistic regression on recency, frequency, monetary and tenure: test-period scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names = [n for n in (RFM_PURCHASES if "recency_log" in train[0].x else RFM) if n in train[0].x]
    if len({s.label for s in train}) < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit([[s.x[n] for n in names] for s in train], [s.label for s in train])
    return [float(v) for v in model.predict_proba([[s.x[n] for n in names] for s in test])[:, 1]]


def _iso(t_ms: int) -> str:
    from processors.scoring.records import iso

    return iso(t_ms)


def _auc(labels: list[bool], scores: list[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if not labels or all(labels) or not any(labels):
        return None
    return float(roc_auc_score(labels, scores))


def evaluate_model(model: str, samples: list[Sample], horizon_ms: int, split: float = 0.7,
                   seed: int = 0) -> ModelEvaluation:
    """One row of the table (see the module docstring)."""
    samples = sorted(samples, key=lambda s: (s.predicted_at_ms, s.customer_id))
    labels = [s.label for s in samples]
    online_all = _auc(labels, [s.probability for s in samples])
    if not samples:
        return ModelEvaluation(model, 0, 0, None, note="no labels")
    t_end = max(s.labelled_at_ms for s in samples)
    complete = [s for s in samples if s.predicted_at_ms + horizon_ms <= t_end]  # both outcomes observable
    if not complete:
        return ModelEvaluation(model, len(samples), sum(labels), online_all,
                               note="no prediction's horizon ended within the replay")
    t_split = complete[min(int(len(complete) * split), len(complete) - 1)].predicted_at_ms
    train = [s for s in complete if s.predicted_at_ms + horizon_ms <= t_split]
    test = [s for s in complete if s.predicted_at_ms > t_split]
    y = [s.label for s in test]
    online = [s.probability for s in test]
    recency = [recency_score(model, s.x) for s in test]
    frequency = [frequency_score(model, s.x) for s in test]
    customers = [s.customer_id for s in test]
    rfm = rfm_logistic(train, test) if train and test else None
    scorers = {"online": online, "recency": recency, "frequency": frequency}
    if rfm is not None:
        scorers["rfm_logistic"] = rfm
    counts = ModelEvaluation(model, len(samples), sum(labels), online_all, len(train), len(test), sum(y),
                             _auc(y, online), _auc(y, recency), frequency=_auc(y, frequency),
                             rfm_logistic=None if rfm is None else _auc(y, rfm),
                             calibration=calibration(y, online) if test else None,
                             split_at=_iso(t_split), test_from=_iso(test[0].predicted_at_ms) if test else "",
                             test_to=_iso(test[-1].predicted_at_ms) if test else "")
    counts = dataclasses.replace(counts, online_minus_recency=auc_difference(y, online, recency, customers,
                                                                             seed=seed))
    if len({s.label for s in train}) < 2 or not test:
        intervals = {k: auc_interval(y, v, customers, seed=seed) for k, v in scorers.items()}
        return dataclasses.replace(counts, intervals=intervals, note="offline: the training period has one class only")
    names = sorted(samples[0].x)
    fit_rows = rows([s.x for s in train], [s.label for s in train], [s.predicted_at_ms for s in train], names)
    test_x = rows([s.x for s in test], y, [s.predicted_at_ms for s in test], names).x
    gbm, logistic = fit_gbm(fit_rows, horizon_ms, seed), fit_logistic(fit_rows, horizon_ms)
    gbm_scores, logistic_scores = list(gbm.scores(test_x)), list(logistic.scores(test_x))
    row = dataclasses.replace(counts, offline_gbm=_auc(y, gbm_scores), offline_logistic=_auc(y, logistic_scores),
                              gbm_settings=gbm.settings, logistic_settings=logistic.settings)
    best = gbm_scores if row.offline == row.offline_gbm else logistic_scores
    scorers |= {"offline_gbm": gbm_scores, "offline_logistic": logistic_scores}
    intervals = {k: auc_interval(y, v, customers, seed=seed) for k, v in scorers.items()}
    return dataclasses.replace(row, intervals=intervals,
                               online_minus_offline=auc_difference(y, online, best, customers, seed=seed))


def evaluate(samples: list[Sample], config: ScoringConfig, split: float = 0.7) -> list[ModelEvaluation]:
    """The table's rows, one per model."""
    return [evaluate_model(m, [s for s in samples if s.model == m], config.horizon_ms(m), split) for m in MODELS]
