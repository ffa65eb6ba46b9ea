"""`journey evaluate --json` on the generator is the library's evaluation, and `journey models` shows the
published metrics (the trainer's records of a real replay, stored in an embedded ClickHouse)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from processors.scoring.config import load_scoring
from processors.scoring.evaluate import evaluate
from processors.scoring.replay import ReplayResult, replay
from streams.cli import app
from streams.sources.generator import Generator
from tests.processors.scoring.conftest import CONFIG

#: Stores the given model-metrics and model-drift records as the sink would, then exits.
WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import orjson
from sinks.client import apply_schema, connect
from sinks.models import model_drift_table, model_metrics_table
client = connect(f"chdb://{(Path(sys.argv[1]) / 'clickhouse').resolve()}")
apply_schema(client)
records = orjson.loads(sys.stdin.buffer.read())
now = datetime.now(UTC)
client.insert_arrow("model_metrics", model_metrics_table(records["metrics"], now))
if records["drift"]:
    client.insert_arrow("model_drift", model_drift_table(records["drift"], now))
"""


def test_evaluate_json_on_the_generator_is_the_evaluation_of_the_same_replay() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--customers", "200", "--days", "30", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout.strip().splitlines()[-1])
    config = load_scoring()
    replayed = replay(Generator(200, 30, 3).records(), config)
    assert out["source"] == "generator (200 customers, 30 days, seed 3)"
    assert (out["events"], out["scores"], out["drift_events"]) == (replayed.events, len(replayed.scores),
                                                                    len(replayed.drift))
    expected = [orjson.loads(orjson.dumps(r.as_dict())) for r in evaluate(replayed.samples, config)]
    assert out["models"] == expected
    counts = {m["model"]: (m["labels"], m["positives"]) for m in out["models"]}
    assert counts["churn"] == (0, 0)  # 30 days: no 90-day horizon ended, and no label is released before its end
    propensity = [s for s in replayed.samples if s.model == "purchase_propensity"]
    assert counts["purchase_propensity"] == (len(propensity), sum(s.label for s in propensity)) and propensity
    assert set(out["latent_churn"]) == {"roc_auc", "labels", "churned"}


def journey(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")} | {
        "JOURNEY_DATA_DIR": str(data), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_models_prints_the_latest_metrics_of_each_model(replayed: ReplayResult, tmp_path: Path) -> None:
    stored = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path)], timeout=120, capture_output=True,
                            input=orjson.dumps({"metrics": replayed.metrics, "drift": replayed.drift}))
    assert stored.returncode == 0, stored.stderr
    latest: dict[str, dict[str, Any]] = {}
    for record in replayed.metrics:
        if record["labels"] > latest.get(record["model"], {"labels": -1})["labels"]:
            latest[record["model"]] = record
    every = CONFIG.evaluation.metrics_every_labels  # a record every N labels: the latest at the last multiple
    learned = {m: sum(s.model == m for s in replayed.samples) for m in ("purchase_propensity", "churn")}
    assert {m: r["labels"] for m, r in latest.items()} == {m: n // every * every for m, n in learned.items()}
    assert min(learned.values()) >= every
    listed = journey(tmp_path, "models", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    keys = ("model", "model_version", "labels", "positives", "roc_auc", "log_loss", "brier")
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(tuple(r[k] for k in keys) for r in rows) == \
        sorted(tuple(r[k] for k in keys) for r in latest.values())
    table = journey(tmp_path, "models")
    assert table.returncode == 0, table.stderr
    assert "Latest prequential metrics" in table.stdout
    for record in latest.values():
        assert f"{record['model']} " in table.stdout and f"{record['roc_auc']:.4f}" in table.stdout
        assert f"{record['labels']:,}" in table.stdout
    assert ("Recent drift" in table.stdout) == bool(replayed.drift)
    for drift in sorted(replayed.drift, key=lambda d: d["detected_at"])[-10:]:  # the table lists the last ten
        assert f"{drift['labels']:,}" in table.stdout and f"{drift['error_before']:.4f}" in table.stdout


