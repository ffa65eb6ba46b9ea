"""A user's mistakes get a short error that names the file, setting or data dir and the fix, never a traceback,
and never leave anything behind (issue 19, item 4). The real `journey` command in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.settings import unknown_environment
from tests.scratch_db import make_database


def journey(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")} | {"COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env=clean | env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args", [("query", "SELECT * FROM events_per_minute"), ("customer", "1"),
                                  ("report", "--json"), ("models",)])
def test_read_only_commands_in_a_directory_without_data_create_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = journey(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"no pipeline data in {tmp_path.resolve() / '.journey'}" in result.stderr
    assert "JOURNEY_DATA_DIR" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no .journey/clickhouse made in the wrong directory


def test_an_empty_database_names_the_missing_table_and_the_fix(tmp_path: Path) -> None:
    """A database without the pipeline's tables (an older version made one in the wrong place)."""
    make_database(tmp_path / ".journey", "CREATE TABLE unrelated (x UInt8) ENGINE = MergeTree ORDER BY x",
                  schema=False)
    query = journey(tmp_path, "query", "SELECT count() FROM events_per_minute")
    assert query.returncode == 1 and "Traceback" not in query.stderr
    assert "events_per_minute is one of the pipeline's tables" in query.stderr
    customer = journey(tmp_path, "customer", "1")
    assert customer.returncode == 1, customer.stderr
    assert "Traceback" not in customer.stderr and "QueryFailed" not in customer.stderr
    assert "is one of the pipeline's tables" in customer.stderr


def test_a_malformed_settings_file_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "journey.toml").write_text("# settings\ndata_dir = x\n")
    result = journey(tmp_path, "query", "SELECT 1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "TOMLDecodeError" not in result.stderr
    assert f"{tmp_path.resolve() / 'journey.toml'}: line 2, column 12" in result.stderr
    assert 'data_dir = ".journey"' in result.stderr  # the fix
    assert len(result.stderr.splitlines()) <= 3


def test_an_invalid_value_in_the_settings_file_names_the_file_and_the_setting(tmp_path: Path) -> None:
    (tmp_path / "journey.toml").write_text("topic_partitions = 0\n")
    result = journey(tmp_path, "query", "SELECT 1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"invalid configuration (environment JOURNEY_* or {tmp_path.resolve() / 'journey.toml'}):",
        "  topic_partitions: Input should be greater than or equal to 1"]


def test_a_mistyped_variable_is_warned_about_with_the_nearest_name(tmp_path: Path) -> None:
    result = journey(tmp_path, "query", "SELECT 1", JOURNEY_DATADIR=str(tmp_path / "elsewhere"))
    assert "JOURNEY_DATADIR is not a journey setting and is ignored (did you mean JOURNEY_DATA_DIR?)" in result.stderr
    assert unknown_environment({"JOURNEY_KAFKA_BOOTSTRAPS": "x", "JOURNEY_SETTINGS": "", "HOME": "/",
                                "journey_log_level": "INFO", "JOURNEY_ZZZ": "1"}) == [
        ("JOURNEY_KAFKA_BOOTSTRAPS", "JOURNEY_KAFKA_BOOTSTRAP"), ("JOURNEY_ZZZ", None)]


@pytest.mark.parametrize("option", [("--speedup", "0"), ("--speedup", "-2"), ("--customers", "0"), ("--days", "0")])
def test_run_rejects_bad_options_before_anything_starts(tmp_path: Path, option: tuple[str, str]) -> None:
    started = time.monotonic()
    result = journey(tmp_path, "run", *option)
    assert result.returncode == 2
    assert f"Invalid value for '{option[0]}'" in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []  # no data dir, no broker log: nothing started
    assert time.monotonic() - started < 60
