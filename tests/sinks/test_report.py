"""`journey report` after a run: its numbers equal the same counts made from the source records."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from streams.sources.generator import generate

pytestmark = pytest.mark.integration
SPEC = {"customers": 80, "days": 20, "seed": 31}
STEPS = {"page_view": "view", "product_view": "product_view", "add_to_cart": "cart",
         "checkout_started": "checkout", "order_placed": "order"}


def journey(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_report_numbers_tables_and_charts(tmp_path: Path) -> None:
    args = [f"--{k}={v}" for k, v in SPEC.items()]
    assert journey(tmp_path, "run", *args).returncode == 0
    result = journey(tmp_path, "report", "--json", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)

    events = [orjson.loads(r.value) for r in generate(**SPEC)]
    clickstream = {"page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "add_to_wishlist",
                   "checkout_started"}
    visitors = {e["customer_id"] for e in events if e["type"] in clickstream}
    placed = [e for e in events if e["type"] == "order_placed"]
    totals = report["totals"][0]
    assert totals["events"] == len(events)
    assert (totals["visitors"], totals["buyers"], totals["orders"]) == (
        len(visitors), len({e["customer_id"] for e in placed}), len(placed))
    funnel: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["type"] in STEPS:
            funnel[STEPS[e["type"]]].add(e["customer_id"])
    assert [(r["step"], r["customers"]) for r in report["funnel"]] == [
        (step, len(funnel[step])) for step in STEPS.values()]
    revenue = sum(e.get("amount") or 0.0 for e in placed)
    assert sum(r["revenue"] for r in report["revenue"]) == pytest.approx(revenue)
    assert sum(r["messages"] for r in report["sentiment"]) == sum(
        1 for e in events if e["type"] == "chat_message" and e["sender_role"] == "customer")

    # Score bands, model metrics and trigger conversion: the run's scoring, trainer, trigger and message
    # workers filled them; the report shows each customer's latest score once and every trigger type.
    assert report["score_bands"] and report["model_metrics"] and report["triggers"]
    bands = {r["model"]: 0 for r in report["score_bands"]}
    for r in report["score_bands"]:
        bands[r["model"]] += r["customers"]
    scored = journey(tmp_path, "query", "--format", "json",
                     "SELECT model, uniqExact(customer_id) AS n FROM scores GROUP BY model").stdout.splitlines()
    assert bands == {r["model"]: r["n"] for r in map(orjson.loads, scored)}
    assert {r["model"] for r in report["model_metrics"]} <= set(bands)  # churn needs 90 days to label
    for r in report["triggers"]:
        assert r["triggered"] == r["messaged"] + r["held_out"] + r["suppressed"] > 0
        if r["uplift"] is not None:
            assert r["uplift"] == pytest.approx(r["treated_conversion"] - r["held_out_conversion"])

    out = tmp_path / "out"
    pngs = sorted(out.glob("*.png"))
    assert {p.stem for p in pngs} >= {"daily", "revenue", "funnel", "cohorts", "categories", "acquisition",
                                      "score_bands", "triggers"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(pngs)
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "the HTML must not load anything"

    tables = journey(tmp_path, "report", "--days", "7", "--out", str(tmp_path / "week"))
    assert tables.returncode == 0 and "Funnel" in tables.stdout and "Cohort retention" in tables.stdout
