"""The commands a user runs: `journey run` on the embedded default, then `query` and `customer`, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas.registry import TOPIC_OF_TYPE
from streams.sources.generator import generate

pytestmark = pytest.mark.integration


def command(*args: str) -> list[str]:
    """``journey ARGS`` as a child process's argument list."""
    return [sys.executable, "-m", "streams.cli", *args]


def user_env() -> dict[str, str]:
    """The environment of a user who set no ``JOURNEY_*`` variable (the defaults, or ./journey.toml)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}


def journey(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=timeout)


def rows(cwd: Path, sql: str) -> list[dict[str, object]]:
    result = journey("query", "--format", "json", sql, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_run_twice_then_query_and_look_up_a_customer(tmp_path: Path) -> None:
    first = journey("run", "--customers", "60", "--days", "5", "--seed", "11", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Events fed per topic" in first.stderr and "Rows in ClickHouse" in first.stderr

    expected = Counter(orjson.loads(r.value)["type"] for r in generate(customers=60, days=5, seed=11))
    stored = {r["type"]: r["n"] for r in rows(tmp_path, """
        SELECT type, count() AS n FROM (
            SELECT type FROM clickstream_events UNION ALL SELECT type FROM order_events
            UNION ALL SELECT type FROM chat_messages UNION ALL SELECT type FROM consent_events)
        GROUP BY type""")}
    assert stored == dict(expected)
    customers = {orjson.loads(r.value)["customer_id"] for r in generate(customers=60, days=5, seed=11)}
    profiles = rows(tmp_path, "SELECT customer_id, events_total FROM customer_profiles FINAL")
    assert {p["customer_id"] for p in profiles} == customers

    second = journey("run", "--customers", "60", "--days", "5", "--seed", "11", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    again = rows(tmp_path, "SELECT count() AS n FROM clickstream_events")[0]["n"]
    clickstream = sum(n for kind, n in expected.items() if TOPIC_OF_TYPE[kind] == "clickstream")
    assert again == clickstream, "the same traffic twice adds nothing"

    someone = sorted(customers)[0]
    looked_up = journey("customer", someone, "--format", "json", cwd=tmp_path)
    assert looked_up.returncode == 0, looked_up.stderr
    profile = orjson.loads(looked_up.stdout)
    stored_events = next(p["events_total"] for p in profiles if p["customer_id"] == someone)
    assert profile["customer_id"] == someone and profile["events_total"] == stored_events
    assert journey("customer", "nobody-like-this", cwd=tmp_path).returncode == 1

    # Erasure from the command line with nothing running: ClickHouse at once, two customers in one pass.
    erased = sorted(customers)[1:3]
    held = {r["customer_id"]: r["n"] for r in rows(tmp_path, f"""
        SELECT customer_id, count() AS n FROM clickstream_events WHERE customer_id IN {tuple(erased)!r}
        GROUP BY customer_id""")}
    profile_rows = {r["customer_id"]: r["n"] for r in rows(tmp_path, f"""
        SELECT customer_id, count() AS n FROM customer_profiles WHERE customer_id IN {tuple(erased)!r}
        GROUP BY customer_id""")}
    result = journey("privacy", "erase", *erased, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reports = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["clickhouse_rows_deleted"]["clickstream_events"] for r in reports] == [held[c] for c in erased]
    assert [r["clickhouse_rows_deleted"]["customer_profiles"] for r in reports] == [profile_rows[c] for c in erased]
    assert all("no pipeline runs" in r["processors"] for r in reports)
    assert rows(tmp_path, "SELECT count() AS n FROM clickstream_events")[0]["n"] == clickstream - sum(held.values())
    assert not rows(tmp_path, f"SELECT customer_id FROM customer_profiles WHERE customer_id IN {tuple(erased)!r}")
    suppressed = rows(tmp_path, "SELECT subject, request_id FROM privacy_suppressions")
    assert sorted((s["subject"], s["request_id"]) for s in suppressed) == sorted(
        (r["subject"], r["request_id"]) for r in reports)


def test_bad_settings_stop_at_start_with_the_setting_named(tmp_path: Path) -> None:
    (tmp_path / "journey.toml").write_text('topic_partitions = 0\n')
    result = journey("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "topic_partitions" in result.stderr and "Traceback" not in result.stderr


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / ("long-directory-name-" * 5) / "nope.csv"  # longer than a line: the message stays whole
    result = journey("run", "--replay", f"taobao:{missing}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot replay taobao:{missing}: no such file: {missing}" in result.stderr
