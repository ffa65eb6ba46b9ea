"""The replay's expiry heap: every held prediction's horizon is on it, not only the last one held."""

from __future__ import annotations

import bisect
from datetime import datetime
from pathlib import Path

from processors.scoring.config import MODELS
from processors.scoring.replay import ReplayResult, replay
from streams.sources import open_source
from tests.processors.scoring.conftest import CONFIG

MAPPING = "customer_id=customer,event_time=time,amount=amount,type=:order_placed"
DAY_MS = 86_400_000


def purchases(tmp_path: Path, rows: list[tuple[str, str, float]]) -> Path:
    path = tmp_path / "purchases.csv"
    path.write_text("customer,time,amount\n" + "".join(f"{c},{t},{a}\n" for c, t, a in rows))
    return path


def test_a_propensity_prediction_held_beside_a_churn_one_is_labelled_when_its_own_horizon_passes(
        tmp_path: Path) -> None:
    # "a" orders once: one profile holds a propensity prediction (24 h) and a churn one (7 days here).
    # "b" orders every day for 5 days, moving the watermark past a's 24 h but not its 7 days.
    rows = [("a", "2024-01-01 10:00:00", 10.0)] + [("b", f"2024-01-0{d} 12:00:00", 5.0) for d in range(1, 6)]
    records, _ = open_source(f"csv:{purchases(tmp_path, rows)}", mapping=MAPPING)
    result = replay(records, CONFIG)
    a = [(s.model, s.label, s.labelled_at_ms - s.predicted_at_ms) for s in result.samples if s.customer_id == "a"]
    assert a == [("purchase_propensity", False, DAY_MS)]  # its horizon passed; churn's has not


def test_every_score_is_made_by_the_model_of_exactly_the_labels_released_before_its_time(
        replayed: ReplayResult) -> None:
    # Counted from the labelled predictions alone: a score at t was made by a model that had learned every
    # label whose horizon ended before t - lateness, and no other (the model's version counts its labels).
    lateness = CONFIG.labels.lateness_ms
    ends = {m: sorted(s.labelled_at_ms for s in replayed.samples if s.model == m) for m in MODELS}
    for score in replayed.scores:
        t = round(datetime.fromisoformat(score["scored_at"]).timestamp() * 1000)
        assert score["model_version"] == bisect.bisect_left(ends[score["model"]], t - lateness), score
    assert len(replayed.scores) > 1000 and min(map(len, ends.values())) > 100
