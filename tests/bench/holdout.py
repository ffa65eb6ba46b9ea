"""The purchases-only churn benchmark of ``make bench`` (processors/scoring/holdout.py).

Two purchases-only histories (customer, time, amount), each cut into a calibration period and a
holdout: the generator's orders alone (a longer history; the learner was chosen on it) and the
Olist orders (customer unique id, purchase time, paid amount; never tuned on). Run alone:
``python -m tests.bench.holdout [--out FILE]``; prints one JSON object per dataset.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from processors.scoring.config import load_scoring
from processors.scoring.holdout import DAY_MS, benchmark
from streams.sources import open_source
from streams.sources.generator import Generator
from streams.sources.record import SourceRecord

MAPPING = "customer_id=customer,event_time=time,amount=amount,type=:order_placed"


def purchases_csv(olist: Path, out: Path) -> dict[str, list[int]]:
    """Write Olist's orders as a purchases-only CSV; return each customer's order times (epoch ms, sorted)."""
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


def generator_purchases(customers: int, days: int, seed: int) -> list[SourceRecord]:
    """The generator's orders only: a purchases-only history."""
    return [r for r in Generator(customers, days, seed).records() if r.topic == "orders"]


def run(records: list[SourceRecord], holdout_days: int, name: str, rescore_hours: int | None = None
        ) -> dict[str, Any]:
    """The benchmark with the holdout the last ``holdout_days`` of the history (shipped scoring settings)."""
    times = [r.event_time.timestamp() * 1000 for r in records if r.event_time is not None]
    cutoff = round(max(times)) - holdout_days * DAY_MS
    config = load_scoring()
    if rescore_hours is not None:
        config = dataclasses.replace(config, rescore=dataclasses.replace(config.rescore, every_hours=rescore_hours))
    out = benchmark(records, cutoff, holdout_days * DAY_MS, config)
    return {"dataset": name, "rescore_hours": config.rescore.every_hours, **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--olist", type=Path, default=Path(__file__).resolve().parents[3] / "shared/datasets/olist")
    parser.add_argument("--customers", type=int, default=800)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--olist-rescore-hours", type=int, default=720,
                        help="Olist's 8,016 customers over two years re-scored daily take too long for a bench run")
    parser.add_argument("--generator-rescore-hours", type=int, default=None,
                        help="re-scoring period of the generator run (default: the scoring file's)")
    args = parser.parse_args()
    results = [run(generator_purchases(args.customers, args.days, 7), 150, f"generator ({args.customers} "
                   f"customers, {args.days} days, seed 7, orders only)", args.generator_rescore_hours)]
    if args.olist.is_dir():
        csv_path = Path("/tmp") / "olist_purchases.csv"
        purchases_csv(args.olist, csv_path)
        records, _ = open_source(f"csv:{csv_path}", mapping=MAPPING)
        results.append(run(records, 180, "olist orders (purchases only)", args.olist_rescore_hours))
    lines = [orjson.dumps(r).decode() for r in results]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
