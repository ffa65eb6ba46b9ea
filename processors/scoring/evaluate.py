"""The evaluation table: the online model against a recency heuristic and an offline batch model.

From the labelled predictions of a replay (``replay.Sample``), per model:

- online: the probability served at prediction time (prequential: made before the label
  was learned), over all labels and over the test period;
- recency: a score from the time since the customer's latest order only (the R of RFM):
  propensity ranks recent buyers first (never ordered: last), churn ranks long-gone
  buyers first;
- offline: scikit-learn ``HistGradientBoostingClassifier`` on the same inputs, with a
  time-based split: the test period is the predictions after the split time ``T`` (the
  ``split`` quantile of prediction times); it trains only on predictions whose horizon
  ended by ``T`` (``predicted_at + horizon <= T``), so no training label is known later
  than ``T`` and the selection does not depend on the outcome.

The split and the test period use only the predictions whose horizon ended by the end of the
replay (the latest label time): a later prediction can only have the label that comes early (an
order within the horizon), never the one that needs the whole horizon to pass, so including it
would leave the test period with one outcome (on 240 days with a 90-day churn horizon, no churned
customer at all). ``online_all`` keeps every labelled prediction.

Every model is compared on the same test predictions. ROC AUC is sklearn's, exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import expm1
from typing import Any

from processors.scoring.config import MODELS, ScoringConfig
from processors.scoring.replay import Sample


@dataclass(frozen=True)
class ModelEvaluation:
    model: str
    labels: int
    positives: int
    online_all: float | None
    train: int
    test: int
    test_positives: int
    online: float | None
    recency: float | None
    offline: float | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def recency_score(model: str, x: dict[str, float]) -> float:
    """The heuristic: hours since the latest order (log1p in the vector), oriented per model."""
    if not x.get("has_last_order"):
        return -1e12 if model == "purchase_propensity" else 1e12  # never ordered: last, or most gone
    hours = expm1(x["hours_since_last_order"])
    return -hours if model == "purchase_propensity" else hours


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
        return ModelEvaluation(model, 0, 0, None, 0, 0, 0, None, None, None, "no labels")
    t_end = max(s.labelled_at_ms for s in samples)
    complete = [s for s in samples if s.predicted_at_ms + horizon_ms <= t_end]  # both outcomes observable
    if not complete:
        return ModelEvaluation(model, len(samples), sum(labels), online_all, 0, 0, 0, None, None, None,
                               "no prediction's horizon ended within the replay")
    t_split = complete[min(int(len(complete) * split), len(complete) - 1)].predicted_at_ms
    train = [s for s in complete if s.predicted_at_ms + horizon_ms <= t_split]
    test = [s for s in complete if s.predicted_at_ms > t_split]
    y = [s.label for s in test]
    online = _auc(y, [s.probability for s in test])
    recency = _auc(y, [recency_score(model, s.x) for s in test])
    offline, note = None, ""
    if len({s.label for s in train}) < 2:
        note = "offline: the training period has one class only"
    elif test:
        from sklearn.ensemble import HistGradientBoostingClassifier

        names = sorted(samples[0].x)
        fitted = HistGradientBoostingClassifier(random_state=seed).fit(
            [[s.x.get(n, 0.0) for n in names] for s in train], [s.label for s in train])
        offline = _auc(y, list(fitted.predict_proba([[s.x.get(n, 0.0) for n in names] for s in test])[:, 1]))
    return ModelEvaluation(model, len(samples), sum(labels), online_all, len(train), len(test), sum(y),
                           online, recency, offline, note)


def evaluate(samples: list[Sample], config: ScoringConfig, split: float = 0.7) -> list[ModelEvaluation]:
    """The table's rows, one per model."""
    return [evaluate_model(m, [s for s in samples if s.model == m], config.horizon_ms(m), split) for m in MODELS]
