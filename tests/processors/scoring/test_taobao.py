"""The issue's target on the real Taobao sample: the online propensity model beats the recency heuristic
and the offline model trained on the same inputs (exact numbers: the replay is deterministic)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from processors.scoring.config import load_scoring
from processors.scoring.evaluate import evaluate
from processors.scoring.model import OnlineModel
from processors.scoring.replay import replay
from processors.scoring.vector import COMPACT
from streams.sources import open_source


def test_taobao_propensity_beats_recency_and_the_offline_model(datasets: Path) -> None:
    records, _ = open_source(f"taobao:{datasets / 'taobao_userbehavior_sample.csv'}")
    config = load_scoring()
    row = next(r for r in evaluate(replay(records, config).samples, config) if r.model == "purchase_propensity")
    assert (row.labels, row.positives, row.train, row.test, row.test_positives) == (11550, 3113, 6507, 3385, 840)
    assert row.online == pytest.approx(0.6087959584619702, abs=1e-9)
    assert row.recency == pytest.approx(0.589034287585368, abs=1e-9)
    assert row.offline == pytest.approx(0.5529675367199924, abs=1e-6)
    assert row.online > row.recency and row.online > row.offline - 0.03


def test_naive_bayes_contributions_add_up_to_its_log_odds() -> None:
    model = OnlineModel("purchase_propensity", load_scoring().learning, "naive_bayes")
    xs = [{name: float((i * 7 + j * 3) % 11) for j, name in enumerate(COMPACT)} for i in range(60)]
    for i, x in enumerate(xs):
        model.learn(x, i % 3 == 0)
    x = xs[5]
    terms = model.contributions(x, len(COMPACT))
    joint = model.pipe.joint_log_likelihood(x)
    prior = math.log(model.pipe.p_class(True)) - math.log(model.pipe.p_class(False))
    assert sum(terms.values()) + prior == pytest.approx(joint[True] - joint[False], abs=1e-4)
    z = joint[True] - joint[False]
    assert model.score(x) == pytest.approx(math.copysign(math.log1p(abs(z)), z))
    assert 0.0 < model.predict(x).probability < 1.0
