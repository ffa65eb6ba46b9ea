"""`journey run`'s progress says what it counts (issue 19, item 5): each stage's outputs equal the rows stored."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration


def journey(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)


def count(cwd: Path, table: str) -> int:
    result = journey(cwd, "query", "--format", "json", f"SELECT count() AS n FROM {table} FINAL")
    assert result.returncode == 0, result.stderr
    return int(orjson.loads(result.stdout)["n"])


def test_each_stage_shows_its_outputs_then_its_inputs(tmp_path: Path) -> None:
    run = journey(tmp_path, "run", "--customers", "60", "--days", "5", "--seed", "11")
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stderr.splitlines()
    assert lines[0].startswith("journey run: generator (60 customers, 5 days, seed 11)")  # before anything starts
    stages = {}
    for line in lines:
        shown = re.match(r"^(\w+)\s.*?(?:([\d,.]+k?) (\w+) · )?([\d,.]+k?)/([\d,.]+k?) (in|sent)\b", line)
        if shown and shown.group(1) in {"fed", "stored", "features", "scoring", "triggers", "messages", "delivery"}:
            stages[shown.group(1)] = shown.groups()[1:]
    assert stages["fed"] == (None, None, "1,522", "1,522", "sent")
    for stage, table, label in (("triggers", "triggers", "fired"), ("messages", "messages", "messages"),
                                ("delivery", "deliveries", "delivered")):
        out, unit, read, total, _ = stages[stage]
        assert unit == label and read == total
        assert int(out.replace(",", "")) == count(tmp_path, table), (stage, out)
    # Scores are refreshed as event time passes (re-scoring timers): the stage counts every score record it
    # wrote, the table keeps the latest per customer and model.
    out, unit, read, total, _ = stages["scoring"]
    assert unit == "scores" and read == total
    assert int(out.replace(",", "")) >= count(tmp_path, "scores") > 0, out
    # Triggers read every input record, profile and score: many more than the triggers they fire.
    assert int(stages["triggers"][2].replace(",", "")) > int(stages["triggers"][0].replace(",", ""))
