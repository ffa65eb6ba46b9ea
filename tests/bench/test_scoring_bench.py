"""The scoring stage's bare-River baseline is the learner each model ships with, doing the stage's work."""

from __future__ import annotations

from processors.scoring.config import load_scoring, scoring_from_dict
from processors.scoring.trainer import Trainer
from tests.bench.scoring import baseline, measure


def steps(pipe: object) -> list[str]:
    return [type(step).__name__ for step in getattr(pipe, "steps", {None: pipe}).values()]


def test_the_baseline_learners_are_the_shipped_ones_whatever_the_scoring_file_says() -> None:
    for config in (load_scoring(), scoring_from_dict({"purchase_propensity": {"learner": "logistic"},
                                                      "churn": {"learner": "naive_bayes"}})):
        shipped = {m: steps(model.pipe) for m, model in Trainer(config).models.items()}
        assert {m: steps(pipe) for m, pipe in baseline(config).items()} == shipped
    assert shipped == {"purchase_propensity": ["StandardScaler", "LogisticRegression"], "churn": ["GaussianNB"]}


def test_a_small_measurement_predicts_and_learns_as_much_as_the_stages() -> None:
    result = measure(600)
    assert (result["profiles"], result["scores"]) == (600, 765)
    assert min(result["bare_river_predict_per_s"], result["bare_river_learn_per_s"]) > 0
