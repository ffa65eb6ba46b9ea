"""Rollups rebuilt from the raw tables equal the ones the materialized views built while inserting.

A sink killed between a raw insert and its views' inserts leaves the rollups short; the
rebuild recomputes every view's target from the raw tables. Run in a fresh process: chDB
opens one database path per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sinks.rebuild import SinkRunMarker

_SCRIPT = """
import json, re, sys
from collections import defaultdict
from datetime import UTC, datetime
from sinks.batches import Staged, events_table
from sinks.client import RAW_TABLES, apply_schema, connect
from sinks.rebuild import rebuild_rollups
from schemas.validation import Limits, Rejected, validate
from tests.bench.workload import generate

client = connect("chdb://" + sys.argv[1])
apply_schema(client)
now = datetime.now(UTC)
pending = defaultdict(Staged)
for offset, (topic, key, value) in enumerate(generate(20_000, seed=5, customers=500).records):
    try:
        pending[topic].add(validate(topic, value, key, Limits(), now), 0, offset)
    except Rejected:
        pass
for topic, staged in pending.items():
    client.insert_arrow(RAW_TABLES[topic], events_table(topic, staged, now))
views = client.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                     "AND engine = 'MaterializedView'").result_rows
def rebuild_targets():
    made = set()
    for (v,) in views:
        q = client.command("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
                           f"AND name = '{v}'")
        made.add(re.search(r"TO\\s+(?:`?[\\w.]+`?\\.)?`?(\\w+)`?", q.split(" AS ", 1)[0])[1])
    return sorted(made)
def contents():
    out = {}
    for t in rebuild_targets():
        client.command(f"OPTIMIZE TABLE `{t}` FINAL")  # one row per key, however the inserts were split
        cols = client.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                            "AND table = {t:String}", parameters={"t": t}).result_rows
        def expr(c, ty):  # floats summed in another order differ in the last bits
            e = f"finalizeAggregation(`{c}`)" if ty.startswith("AggregateFunction") else f"`{c}`"
            return f"round({e}, 6)" if "Float" in ty else e
        exprs = ", ".join(expr(c, ty) for c, ty in cols)
        out[t] = sorted(map(repr, client.query(f"SELECT {exprs} FROM `{t}`").result_rows))
    return out
before = contents()
for target in rebuild_targets():  # what a sink killed after the raw inserts leaves: no rollup rows at all
    client.command(f"TRUNCATE TABLE `{target}`")
emptied = sum(len(v) for v in contents().values())
rebuild_rollups(client)
print(json.dumps({"views": len(views), "before": before, "after": contents(), "emptied": emptied}))
"""


def test_rebuilt_rollups_equal_what_the_views_built(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "db")], capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["views"] >= 10 and found["emptied"] == 0
    assert sum(len(rows) for rows in found["before"].values()) > 100
    assert found["after"] == found["before"]


def test_the_run_marker_tells_an_unclean_stop(tmp_path: Path) -> None:
    marker = SinkRunMarker(tmp_path, "g-sink")
    assert not marker.previous_run_crashed()
    with marker:
        assert marker.path.exists()
    assert not marker.previous_run_crashed(), "a clean stop removes it"
    marker.path.write_text("999999999")  # what a killed sink leaves: the pid of a process that is gone
    assert marker.previous_run_crashed()
