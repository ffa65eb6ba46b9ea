"""The offline batch competitors of the online models: tuned gradient boosting and a batch logistic regression.

Both see only the training period (``evaluate.py``) and choose their settings on a time-based
validation split inside it, the way a batch model would be tuned in production:

- the validation predictions are the training predictions after ``T_v``, the ``VALIDATION``
  quantile of their prediction times; the models fit for validation on the training predictions
  whose horizon ended by ``T_v`` (no label known after ``T_v``, the outer split's own rule);
- gradient boosting (``HistGradientBoostingClassifier``) tries each of :data:`GBM_GRID` for up to
  ``MAX_ITER`` boosting rounds and keeps the settings and the number of rounds with the best
  validation ROC AUC (early stopping on time, not on a random fraction);
- the logistic regression standardises the inputs and picks its L2 strength ``C`` from
  :data:`C_GRID` the same way.

The chosen settings are then fitted on the whole training period. With one class in the fit or the
validation part there is nothing to choose by: the first settings of each grid are used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, ParamSpec

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from processors.scoring.bootstrap import roc_auc

P = ParamSpec("P")
#: Where the validation period starts, as a quantile of the training predictions' times.
VALIDATION = 0.75
MAX_ITER = 200
#: (learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization)
GBM_GRID = tuple(product((0.05, 0.1), (3, 7, 31), (20, 100, 400), (1.0,)))
C_GRID = (1.0, 0.1, 0.01, 0.001, 10.0)


@dataclass(frozen=True)
class Rows:
    """Training or test rows: inputs, labels and prediction times (epoch ms), in time order."""

    x: np.ndarray
    y: np.ndarray
    t_ms: np.ndarray


@dataclass(frozen=True)
class Fitted:
    """A fitted offline model and the settings validation chose (a readable summary)."""

    model: Any
    settings: str

    def scores(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x)[:, 1]  # type: ignore[no-any-return]


def _two_classes(y: np.ndarray) -> bool:
    return bool(y.any() and not y.all())


def validation_split(train: Rows, horizon_ms: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Masks (fit, validation) inside the training period, or None when either lacks a class."""
    t_v = np.quantile(train.t_ms, VALIDATION, method="lower")
    fit, validation = train.t_ms + horizon_ms <= t_v, train.t_ms > t_v
    if not (_two_classes(train.y[fit]) and _two_classes(train.y[validation])):
        return None
    return fit, validation


def _gbm(settings: tuple[float, int, int, float], rounds: int, seed: int) -> HistGradientBoostingClassifier:
    rate, leaves, leaf, l2 = settings
    return HistGradientBoostingClassifier(learning_rate=rate, max_leaf_nodes=leaves, min_samples_leaf=leaf,
                                          l2_regularization=l2, max_iter=rounds, early_stopping=False,
                                          random_state=seed)


def one_thread(fit: Callable[P, Fitted]) -> Callable[P, Fitted]:
    """Fit on one thread: on a shared machine OpenMP's threads spin against each other (50 times slower
    measured for the boosting grid)."""
    @functools.wraps(fit)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Fitted:
        with threadpool_limits(1):
            return fit(*args, **kwargs)
    return wrapped


@one_thread
def fit_gbm(train: Rows, horizon_ms: int, seed: int = 0) -> Fitted:
    """Gradient boosting with settings and rounds chosen on the validation period (module docstring)."""
    best: tuple[float, tuple[float, int, int, float], int] = (-1.0, GBM_GRID[0], 100)
    split = validation_split(train, horizon_ms)
    if split is not None:
        fit, validation = split
        for settings in GBM_GRID:
            model = _gbm(settings, MAX_ITER, seed).fit(train.x[fit], train.y[fit])
            for rounds, p in enumerate(model.staged_predict_proba(train.x[validation]), 1):
                auc = roc_auc(train.y[validation], p[:, 1])
                if auc > best[0]:
                    best = (auc, settings, rounds)
    _, settings, rounds = best
    rate, leaves, leaf, l2 = settings
    return Fitted(_gbm(settings, rounds, seed).fit(train.x, train.y),
                  f"learning_rate={rate}, max_leaf_nodes={leaves}, min_samples_leaf={leaf}, "
                  f"l2_regularization={l2}, rounds={rounds}")


def _logistic(c: float) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


@one_thread
def fit_logistic(train: Rows, horizon_ms: int) -> Fitted:
    """Standardised logistic regression with ``C`` chosen on the validation period."""
    best = (-1.0, C_GRID[0])
    split = validation_split(train, horizon_ms)
    if split is not None:
        fit, validation = split
        for c in C_GRID:
            p = _logistic(c).fit(train.x[fit], train.y[fit]).predict_proba(train.x[validation])[:, 1]
            auc = roc_auc(train.y[validation], p)
            if auc > best[0]:
                best = (auc, c)
    return Fitted(_logistic(best[1]).fit(train.x, train.y), f"C={best[1]}")


def rows(xs: Sequence[dict[str, float]], ys: Sequence[bool], t_ms: Sequence[int], names: Sequence[str]) -> Rows:
    """Rows from input dicts (a missing input is 0)."""
    return Rows(np.array([[x.get(n, 0.0) for n in names] for x in xs], dtype=float).reshape(len(xs), len(names)),
                np.array(ys, dtype=bool), np.array(t_ms, dtype=np.int64))
