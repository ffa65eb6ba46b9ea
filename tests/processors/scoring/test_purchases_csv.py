"""A purchases-only history (customer, time, amount) through the generic CSV mapping into `journey evaluate`:
the churn labels equal an independent count from the same orders, and the evaluation row is produced.

The CSV is derived from the Olist orders sample: one row per order, the customer's unique id (a
customer who ordered twice has two Olist customer ids but one unique id), the purchase time and
the order's paid amount."""

from __future__ import annotations

import bisect
import csv
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
from typer.testing import CliRunner

from processors.scoring.config import load_scoring
from streams.cli import app

MAPPING = "customer_id=customer,event_time=time,amount=amount,type=:order_placed"


def purchases_csv(olist: Path, out: Path) -> dict[str, list[int]]:
    """Write the purchases-only CSV; return each customer's order times (epoch ms, sorted)."""
    with (olist / "olist_customers_dataset.csv").open() as f:
        unique = {row["customer_id"]: row["customer_unique_id"] for row in csv.DictReader(f)}
    paid: dict[str, float] = defaultdict(float)
    with (olist / "olist_order_payments_dataset.csv").open() as f:
        for row in csv.DictReader(f):
            paid[row["order_id"]] += float(row["payment_value"])
    times: dict[str, list[int]] = defaultdict(list)
    with (olist / "olist_orders_dataset.csv").open() as f, out.open("w", newline="") as w:
        writer = csv.writer(w)
        writer.writerow(["customer", "time", "amount"])
        for row in csv.DictReader(f):
            customer = unique[row["customer_id"]]
            writer.writerow([customer, row["order_purchase_timestamp"], round(paid[row["order_id"]], 2)])
            stamp = datetime.fromisoformat(row["order_purchase_timestamp"]).replace(tzinfo=UTC)
            times[customer].append(round(stamp.timestamp() * 1000))
    return {c: sorted(ts) for c, ts in times.items()}


def churn_labels(orders: dict[str, list[int]]) -> tuple[int, int]:
    """(labels, churned) by the label rule, counted from the orders alone: a prediction at every order at
    least ``hold_every_hours`` after the customer's previous held one; not churned when a later order comes
    within the horizon, churned when the horizon ends before the final watermark with none."""
    config = load_scoring()
    horizon, every = config.churn.horizon_ms, config.churn.hold_every_ms
    watermark = max(t for ts in orders.values() for t in ts) - config.labels.lateness_ms
    labels = churned = 0
    for ts in orders.values():
        last = None
        for t in ts:
            if last is not None and t - last < every:
                continue
            last = t
            after = bisect.bisect_right(ts, t)
            if after < len(ts) and ts[after] <= t + horizon:
                labels += 1
            elif t + horizon < watermark:
                labels, churned = labels + 1, churned + 1
    return labels, churned


def test_a_purchases_only_csv_gives_the_independently_counted_churn_labels_and_an_evaluation_row(
        datasets: Path, tmp_path: Path) -> None:
    path = tmp_path / "purchases.csv"
    orders = purchases_csv(datasets / "olist", path)
    assert (len(orders), sum(len(ts) for ts in orders.values())) == (8016, 8135)
    expected = churn_labels(orders)
    assert expected == (7392, 7320)
    result = CliRunner().invoke(app, ["evaluate", "--replay", f"csv:{path}", "--map", MAPPING, "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert out["events"] == 8135
    churn = next(m for m in out["models"] if m["model"] == "churn")
    assert (churn["labels"], churn["positives"]) == expected
    assert (churn["train"], churn["test"], churn["test_positives"]) == (3590, 2213, 2205)  # 8 came back
    assert round(churn["online"], 4) == 0.8332
    assert round(churn["recency"], 4) == 0.5  # scored at the order: zero hours since it for everyone
    assert (round(churn["offline_gbm"], 4), round(churn["offline_logistic"], 4)) == (0.8823, 0.8244)
