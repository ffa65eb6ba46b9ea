"""Replays are deterministic, snapshots restore identical predictions, the evaluation table adds up."""

from __future__ import annotations

import math
import pickle

import pytest
from sklearn.metrics import roc_auc_score

from processors.scoring.evaluate import evaluate, recency_score
from processors.scoring.processor import ScoringProcessor
from processors.scoring.replay import ReplayResult, replay
from processors.scoring.trainer import load_snapshot
from schemas.outputs import Score
from streams.sources.generator import Generator
from streams.sources.record import SourceRecord
from tests.processors.scoring.conftest import CONFIG


def test_a_replay_twice_gives_identical_scores(replayed: ReplayResult,
                                               traffic: tuple[list[SourceRecord], Generator]) -> None:
    again = replay(traffic[0], CONFIG)
    assert again.scores == replayed.scores
    assert again.metrics == replayed.metrics and again.drift == replayed.drift
    assert len(replayed.scores) > 500
    for record in replayed.scores[:200]:
        Score.model_validate(record)  # the contract holds
    assert any(not s["cold_start"] for s in replayed.scores) and any(s["cold_start"] for s in replayed.scores)
    assert all(s["top_features"] for s in replayed.scores if s["model_version"] > 10)  # scaler has a variance


def test_an_evaluation_replay_keeps_no_scores_and_no_explanations_and_learns_the_same(
        replayed: ReplayResult, traffic: tuple[list[SourceRecord], Generator]) -> None:
    """What `journey evaluate` runs: the scores counted, not kept, and made without top features; the labelled
    samples (inputs, served probabilities, labels) and the metrics are exactly those of the full replay."""
    lean = replay(traffic[0], CONFIG, keep_scores=False, explain=False)
    assert lean.scores == [] and lean.scored == replayed.scored == len(replayed.scores)
    assert lean.samples == replayed.samples and lean.metrics == replayed.metrics and lean.drift == replayed.drift


def test_a_restored_snapshot_predicts_exactly_what_the_trainer_does(replayed: ReplayResult) -> None:
    assert replayed.trainer is not None
    state = load_snapshot(replayed.trainer.snapshot())
    for name, model in replayed.trainer.models.items():
        restored = state.models[name]
        assert restored.learned == model.learned > 0
        for sample in replayed.samples[:300]:
            assert restored.predict(sample.x) == model.predict(sample.x)
            assert restored.contributions(sample.x, 3) == model.contributions(sample.x, 3)
    assert state.metrics["churn"].roc_auc == replayed.trainer.state.metrics["churn"].roc_auc
    with pytest.raises(ValueError, match="not a model snapshot"):
        load_snapshot(pickle.dumps({"models": {}}))


def test_a_scorer_on_restored_models_emits_the_same_scores(replayed: ReplayResult) -> None:
    assert replayed.trainer is not None
    live = ScoringProcessor(CONFIG, replayed.trainer.models)
    restored = ScoringProcessor(CONFIG, load_snapshot(replayed.trainer.snapshot()).models)
    profile = {"customer_id": "x", "as_of": "2024-02-01T10:00:00Z", "events_total": 12,
               "features": {"sessions": 3, "orders_total": 2, "cart_items": 1, "last_order_ms": 1706000000000}}
    first = live.on_profile(live.new_state("x"), profile)
    assert len(first) == 2  # both models: the customer has ordered
    assert first == restored.on_profile(restored.new_state("x"), profile)


def test_the_evaluation_table_counts_the_labels_and_scores_them_like_sklearn(replayed: ReplayResult) -> None:
    rows = {r.model: r for r in evaluate(replayed.samples, CONFIG)}
    for model, row in rows.items():
        samples = sorted((s for s in replayed.samples if s.model == model), key=lambda s: s.predicted_at_ms)
        y = [s.label for s in samples]
        assert (row.labels, row.positives) == (len(samples), sum(y))
        assert row.online_all == pytest.approx(roc_auc_score(y, [s.probability for s in samples]))
        # Split among the predictions whose horizon ended by the last label: both outcomes observable.
        end = max(s.labelled_at_ms for s in samples)
        complete = [s for s in samples if s.predicted_at_ms + CONFIG.horizon_ms(model) <= end]
        split = complete[int(len(complete) * 0.7)].predicted_at_ms
        test = [s for s in complete if s.predicted_at_ms > split]
        train = [s for s in complete if s.predicted_at_ms + CONFIG.horizon_ms(model) <= split]
        assert (row.test, row.train, row.test_positives) == (len(test), len(train), sum(s.label for s in test))
        assert all(s.labelled_at_ms <= split for s in train), "a training label known after the split"
        assert row.recency == pytest.approx(roc_auc_score([s.label for s in test],
                                                          [recency_score(model, s.x) for s in test]))
        assert row.offline_gbm is not None and row.offline_logistic is not None
        assert row.offline == max(row.offline_gbm, row.offline_logistic)
        assert row.online_minus_offline is not None and row.online is not None
        assert row.online_minus_offline.estimate == pytest.approx(row.online - row.offline)
        assert row.online_minus_recency is not None and row.recency is not None
        assert row.online_minus_recency.estimate == pytest.approx(row.online - row.recency)
        assert row.target_met == (row.online > row.recency and row.online >= row.offline - 0.03)


def test_recency_orders_customers_by_their_last_order() -> None:
    recent, older = {"has_last_order": 1.0, "hours_since_last_order": math.log1p(2)}, \
        {"has_last_order": 1.0, "hours_since_last_order": math.log1p(200)}
    assert recency_score("purchase_propensity", recent) > recency_score("purchase_propensity", older)
    assert recency_score("churn", recent) < recency_score("churn", older)
    assert recency_score("purchase_propensity", {"has_last_order": 0.0}) < recency_score("purchase_propensity", older)
