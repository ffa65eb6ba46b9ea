"""A purchases-only history (customer, time, amount) through the generic CSV mapping into `journey evaluate`:
the churn labels equal an independent count from the same orders, and the evaluation row is produced.

The CSV is derived from the Olist orders sample: one row per order, the customer's unique id (a
customer who ordered twice has two Olist customer ids but one unique id), the purchase time and
the order's paid amount."""

from __future__ import annotations

import bisect
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from processors.scoring.config import HOUR_MS, load_scoring
from processors.scoring.rescore import AGE_BUCKETS_HOURS, RESCORE_HOLD_EVERY_MS
from streams.cli import app
from tests.bench.holdout import MAPPING, purchases_csv

#: Re-score every 30 days here (the default is daily): 8,016 customers over two years stay quick.
RESCORE_HOURS = 720


def churn_labels(orders: dict[str, list[int]]) -> tuple[int, int]:
    """(labels, churned) by the label rule, counted from the orders alone. Scores: at every order (its profile
    changes the order count) and at the re-scoring times after the latest order (1 h, 6 h, then every
    RESCORE_HOURS) before the next order or the newest event of all. Held: an order's score at least
    ``hold_every_hours`` after the customer's previous held one, a timer's at least a week after. Labelled
    when the horizon ends before the final watermark: churned when no later order came within it."""
    config = load_scoring()
    horizon, every = config.churn.horizon_ms, config.churn.hold_every_ms
    newest = max(t for ts in orders.values() for t in ts)
    watermark = newest - config.labels.lateness_ms
    step = RESCORE_HOURS * HOUR_MS
    labels = churned = 0
    for ts in orders.values():
        held: list[int] = []
        moments = sorted(set(ts))  # two orders at one instant: one prediction time
        for i, t in enumerate(moments):
            if not held or t - held[-1] >= every:
                held.append(t)
            end = moments[i + 1] if i + 1 < len(moments) else newest
            timers = [t + h * HOUR_MS for h in AGE_BUCKETS_HOURS] + list(range(t + step, end, step))
            for r in timers:
                if r < end and r - held[-1] >= max(every, RESCORE_HOLD_EVERY_MS):
                    held.append(r)
        for r in held:
            if r + horizon >= watermark:
                continue
            after = bisect.bisect_right(ts, r)
            labels += 1
            churned += not (after < len(ts) and ts[after] <= r + horizon)
    return labels, churned


@pytest.mark.timeout(3600)  # two years of 8,016 customers replayed and five offline fits: slow on a loaded machine
def test_a_purchases_only_csv_gives_the_independently_counted_churn_labels_and_an_evaluation_row(
        datasets: Path, tmp_path: Path) -> None:
    path = tmp_path / "purchases.csv"
    orders = purchases_csv(datasets / "olist", path)
    assert (len(orders), sum(len(ts) for ts in orders.values())) == (8016, 8135)
    expected = churn_labels(orders)
    result = CliRunner().invoke(app, ["evaluate", "--replay", f"csv:{path}", "--map", MAPPING,
                                      "--rescore-hours", str(RESCORE_HOURS), "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert out["events"] == 8135
    churn = next(m for m in out["models"] if m["model"] == "churn")
    assert (churn["labels"], churn["positives"]) == expected
    # The calibration table covers the test period: its bins count every test prediction, its base rate is
    # the test period's churn rate, and the base-rate constant's Brier is rate * (1 - rate).
    calibration = churn["calibration"]
    assert sum(b["n"] for b in calibration["bins"]) == churn["test"]
    rate = churn["test_positives"] / churn["test"]
    assert calibration["base_rate"] == rate and abs(calibration["brier_base_rate"] - rate * (1 - rate)) < 1e-12
    assert set(churn["intervals"]) >= {"online", "recency", "frequency", "rfm_logistic"}
