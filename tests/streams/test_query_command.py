"""`journey query` output (issue 19, item 6): fits 80 columns, rounded numbers, csv/tsv, the user's SQL in errors;
`journey --version`. Run as the real command on a real embedded database."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from streams.query_format import delimited, explain_error, print_result
from tests.scratch_db import make_database

#: The columns of trigger_conversion, the result the issue saw cut to `tr…` and `0.…` at 80 columns.
WIDE = ("SELECT 'abandoned_cart' AS trigger, 1234567 AS triggered, 1200000 AS messaged, 34567 AS held_out, "
        "0 AS suppressed, 0.123456789012 AS treated_conversion, 0.0987654321098 AS held_out_conversion, "
        "0.0246913568 AS uplift, 0.0151234567 AS uplift_standard_error")


def journey(data: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    env |= {"JOURNEY_DATA_DIR": str(data), "COLUMNS": str(columns), "JOURNEY_SETTINGS": ""}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose embedded database has the pipeline's schema (what `journey run` leaves)."""
    return make_database(tmp_path_factory.mktemp("data"))


def test_a_wide_result_fits_80_columns_with_rounded_numbers(data: Path) -> None:
    result = journey(data, "query", WIDE)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert max(map(len, result.stdout.splitlines())) <= 80
    for text in ("abandoned_cart", "1,234,567", "0.1235", "0.0988", "0.0247", "0.0151", "uplift_standard_error"):
        assert text in result.stdout
    assert "0.123456789012" not in result.stdout  # no 12-digit floats in the table


def test_vertical_on_request_and_a_narrow_result_stays_a_table(data: Path) -> None:
    vertical = journey(data, "query", "--vertical", "SELECT 1 AS a, 2.5 AS b")
    assert vertical.returncode == 0, vertical.stderr
    assert vertical.stdout.split() == ["Row", "1:", "a:", "1", "b:", "2.50"]
    table = journey(data, "query", "SELECT 1 AS a, 0.25 AS b")
    assert "┃ a ┃      b ┃" in table.stdout and "│ 1 │ 0.2500 │" in table.stdout


def test_csv_and_tsv_keep_full_values(data: Path) -> None:
    sql = "SELECT number AS n, number / 3 AS third, if(number = 1, NULL, 'a,\"b') AS s FROM numbers(2)"
    as_csv = journey(data, "query", "--format", "csv", sql)
    assert as_csv.returncode == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["n", "third", "s"], ["0", "0.0", 'a,"b'],
                                                            ["1", str(1 / 3), ""]]
    as_tsv = journey(data, "query", "--format", "tsv", sql)
    assert as_tsv.stdout == f'n\tthird\ts\n0\t0.0\ta,"b\n1\t{1 / 3}\t\\N\n'
    wrong = journey(data, "query", "--format", "xml", sql)
    assert wrong.returncode == 2 and "table, json, csv, tsv" in wrong.stderr


def test_a_syntax_error_quotes_the_users_sql_not_the_added_format_clause(data: Path) -> None:
    result = journey(data, "query", "SELECT count() FRM clickstream_events")
    assert result.returncode == 1
    assert "FORMAT Parquet" not in result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    quoted = lines.index("    SELECT count() FRM clickstream_events")
    # ClickHouse reads FRM as an alias and fails at the table name: the caret is under it.
    assert lines[quoted + 1] == "    " + " " * len("SELECT count() FRM ") + "^"
    assert "(line 1, col 20)" in result.stderr


def test_version(data: Path) -> None:
    from importlib.metadata import version

    result = journey(data, "--version")
    assert result.returncode == 0 and result.stdout == f"journey {version('journey')}\n"


def test_explain_error_points_at_the_line_of_a_multiline_query() -> None:
    message = ("Code: 62. DB::Exception: Syntax error: failed at position 18 ('FRM') (line 2, col 1): FRM x\n"
               " FORMAT Parquet. Expected one of: FROM, WHERE. (SYNTAX_ERROR)")
    assert explain_error("SELECT count()\nFRM x", message) == (
        "Code: 62. DB::Exception: Syntax error: failed at position 18 ('FRM') (line 2, col 1).\n"
        "  at line 2, column 1 of your query:\n    FRM x\n    ^\nExpected one of: FROM, WHERE. (SYNTAX_ERROR)")
    other = "Code: 60. DB::Exception: Unknown table expression identifier 'x'. In scope SELECT 1 FROM x FORMAT Parquet."
    assert explain_error("SELECT 1 FROM x", other) == other.removesuffix(" FORMAT Parquet.") + "."


def test_delimited_escapes_tsv_specials() -> None:
    assert delimited(["a"], [("x\ty\nz\\",)], "\t") == "a\nx\\ty\\nz\\\\\n"


def test_print_result_turns_vertical_only_when_too_wide() -> None:
    out = Console(width=40, record=True, file=io.StringIO())
    print_result(out, ["name", "value"], [("a", 1.0)])
    assert "┃ name ┃" in out.export_text()
    wide = Console(width=20, record=True, file=io.StringIO())
    print_result(wide, ["name", "value"], [("abcdefghij", 1234.5678)])
    assert wide.export_text().splitlines() == ["Row 1:", " name: abcdefghij", "value: 1,234.57"]
