"""`journey replay --check` and the CSV options on the command line: a dry run without Kafka, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import app

MAPPING = "customer_id=cust,event_time=when,amount=total,type=:order_placed"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without settings (no Kafka configured), holding the exports."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOURNEY_SETTINGS", "")
    for name in ("JOURNEY_KAFKA_BOOTSTRAP", "JOURNEY_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_replay_check_reads_everything_and_starts_nothing(shop: Path) -> None:
    (shop / "eu.csv").write_text("cust;when;total\nc1;01/02/2024 10:00;12,50\nc2;13/02/2024 09:30;3,00\nc3;x\n")
    code, out = _invoke("replay", "csv:eu.csv", "--map", MAPPING, "--decimal", ",", "--check")
    assert code == 0, out
    lines = out.splitlines()
    assert "column 'when': times read as %d/%m/%Y %H:%M" in lines
    assert "event time from 2024-02-01T10:00:00+00:00 to 2024-02-13T09:30:00+00:00" in lines
    assert "2 records will be accepted, 1 will be dead letters:" in lines
    assert lines[lines.index("  wrong_field_count: 1") + 1] == "    eu.csv line 4: 2 fields, fewer than the header's 3"
    assert "no Kafka configured" not in out


def test_an_ambiguous_column_is_one_line_naming_the_option(shop: Path) -> None:
    (shop / "us.csv").write_text("cust,when,total\nc1,01/02/2024,1\nc2,03/04/2024,2\n")
    code, out = _invoke("replay", "csv:us.csv", "--map", MAPPING, "--check")
    assert code == 2 and "Traceback" not in out
    assert out.startswith("cannot replay csv:us.csv: us.csv: column 'when' is ambiguous") and "--time-format" in out
    assert len(out.strip().splitlines()) == 1
    code, out = _invoke("replay", "csv:us.csv", "--map", MAPPING, "--time-format", "%m/%d/%Y", "--check")
    assert code == 0 and "event time from 2024-01-02T00:00:00+00:00 to 2024-03-04T00:00:00+00:00" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--decimal", ";"], "--decimal is '.' or ','"),
    (["--encoding", "klingon"], "unknown encoding 'klingon'"),
    (["--max-gap", "1"], "--max-gap needs --speedup"),
    (["--delimiter", ";;"], "--delimiter is one character"),
])
def test_bad_options_are_named(shop: Path, args: list[str], message: str) -> None:
    (shop / "ok.csv").write_text("cust,when,total\nc1,2024-02-01 10:00,1\n")
    code, out = _invoke("replay", "csv:ok.csv", "--map", MAPPING, *args, "--check")
    assert code == 2 and message in out and "Traceback" not in out
