"""The replay's expiry heap: every held prediction's horizon is on it, not only the last one held."""

from __future__ import annotations

from pathlib import Path

from processors.scoring.replay import replay
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
