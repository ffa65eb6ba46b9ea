"""The report's reliability chart (issue 18): each customer's latest warm score whose horizon has ended, labelled
from the stored orders, binned by probability; checked against pandas on the same rows. Real chDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sinks.access import Reader
from sinks.client import connect
from sinks.report import _figure, build_report
from tests.conftest import reset_clickhouse

DAY_S = 86_400
START = pd.Timestamp("2024-01-01", tz="UTC")
HORIZONS = {"purchase_propensity": DAY_S, "churn": 30 * DAY_S}


def _data(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    scores, orders = [], []
    for i in range(300):
        customer = f"c{i}"
        for model in ("purchase_propensity", "churn"):
            # two scores per customer and model: only the latest (ReplacingMergeTree by scored_at) counts
            for k in range(2):
                scores.append({"score_id": f"{customer}-{model}-{k}", "customer_id": customer, "model": model,
                               "scored_at": START + pd.Timedelta(days=int(rng.integers(0, 60)), hours=k * 12),
                               "probability": float(rng.uniform()), "cold_start": bool(rng.uniform() < 0.1)})
        for _ in range(int(rng.integers(0, 4))):
            hours = int(rng.integers(0, 2400))
            orders.append({"customer_id": customer, "event_time": START + pd.Timedelta(hours=hours)})
    return pd.DataFrame(scores), pd.DataFrame(orders)


def _expected(scores: pd.DataFrame, orders: pd.DataFrame) -> dict[tuple[str, int], tuple[int, float, float]]:
    newest = orders["event_time"].max()
    latest = scores.sort_values("scored_at").groupby(["customer_id", "model"]).tail(1)
    latest = latest[~latest["cold_start"]]
    out: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for row in latest.itertuples():
        end = row.scored_at + pd.Timedelta(seconds=HORIZONS[row.model])
        if end > newest:
            continue
        mine = orders[orders["customer_id"] == row.customer_id]["event_time"]
        ordered = bool(((mine > row.scored_at) & (mine <= end)).any())
        label = (not ordered) if row.model == "churn" else ordered
        out.setdefault((row.model, min(int(row.probability * 10), 9)), []).append((row.probability, float(label)))
    return {k: (len(v), float(np.mean([p for p, _ in v])), float(np.mean([y for _, y in v]))) for k, v in out.items()}


@pytest.fixture
def reader(chdb_path: Path) -> Iterator[Reader]:
    client = connect(f"chdb://{chdb_path}")
    reset_clickhouse(client)
    scores, orders = _data()
    rows = ", ".join(f"('{r.score_id}', '{r.customer_id}', '{r.model}', 1, '{r.scored_at:%Y-%m-%d %H:%M:%S}', "
                     f"{r.probability!r}, 'low', {str(r.cold_start).lower()}, map(), now64(3))"
                     for r in scores.itertuples())
    client.command(f"INSERT INTO scores (score_id, customer_id, model, model_version, scored_at, probability, band, "
                   f"cold_start, top_features, emitted_at) VALUES {rows}")
    values = ", ".join(f"('o{i}', '{r.customer_id}', '{r.event_time:%Y-%m-%d %H:%M:%S}', 'order_placed', 'o{i}', "
                       f"'EUR')" for i, r in enumerate(orders.itertuples()))
    client.command(f"INSERT INTO order_events (event_id, customer_id, event_time, type, order_id, currency) "
                   f"VALUES {values}")
    with Reader("test", client=client) as r:
        yield r


def test_reliability_chart_bins_the_latest_complete_scores_against_the_orders(reader: Reader) -> None:
    section = build_report(reader, horizons_s=HORIZONS).section("reliability")
    got = {(row[0], int(row[1])): (int(row[2]), row[3], row[4]) for row in section.rows}
    expected = _expected(*_data())
    assert got.keys() == expected.keys()
    assert {"churn", "purchase_propensity"} == {k[0] for k in got}
    for key, (n, mean_p, observed) in expected.items():
        assert got[key][0] == n, key
        assert got[key][1] == pytest.approx(mean_p, abs=1e-9), key
        assert got[key][2] == pytest.approx(observed, abs=1e-9), key
    assert _figure(section) is not None
