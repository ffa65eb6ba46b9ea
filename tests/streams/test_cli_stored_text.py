"""Stored text reaches the terminal as text: `journey report`, `query`, `customer` and `models` with hostile values.

The values sit in a real embedded ClickHouse (the schema's raw tables; its materialized views
fill the rollups the report reads). A category id ``[/oops]`` made rich raise a MarkupError,
``[bold red]`` was read as styling, ANSI and OSC-8 escapes from chat text reached the terminal,
and a dead letter's original that is not UTF-8 failed `journey query` with a decode error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from sinks.client import apply_schema, connect

pytestmark = pytest.mark.integration

CLOSING = "[/oops]"
STYLE = "[bold red]styled?"
ANSI = "\x1b[31mRED\x1b[0m"
OSC8 = "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
C1 = "\x9b31mC1"
TEX = "$\\notacommand{$"  # matplotlib reads $...$ as TeX in chart labels
CUSTOMER = "c-[/oops]"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose embedded database holds the hostile values (no pipeline running)."""
    data = tmp_path_factory.mktemp("stored-text") / "data"
    data.mkdir()
    client = connect(f"chdb://{(data / 'clickhouse').resolve()}")
    apply_schema(client)
    for i, category in enumerate([CLOSING, STYLE, ANSI, OSC8, C1, TEX]):
        client.command(
            "INSERT INTO order_events (event_id, customer_id, event_time, type, order_id, currency, amount, "
            "item_product_ids, item_category_ids, item_quantities, item_unit_prices, schema_version) VALUES "
            "({e:String}, {c:String}, now64(3), 'order_placed', {o:String}, 'EUR', 10, ['p1'], [{cat:String}], "
            "[1], [10.0], 1)", parameters={"e": f"e{i}", "c": CUSTOMER, "o": f"o{i}", "cat": category})
    features = orjson.dumps({"favourite_category": STYLE, "last_chat": ANSI + OSC8, "orders_total": 5}).decode()
    client.command(
        "INSERT INTO customer_profile_history (customer_id, as_of, events_total, stage, segments, orders_total, "
        "revenue_total, cart_value, features, emitted_at) VALUES ({c:String}, now64(3), 5, {stage:String}, "
        "[{seg:String}], 5, 50, 0, {f:String}, now64(3))",
        parameters={"c": CUSTOMER, "stage": STYLE, "seg": CLOSING, "f": features})
    client.command(
        "INSERT INTO dead_letters (dead_letter_id, source_topic, reason, detail, original, received_at) VALUES "
        "('d1', 'chat', 'invalid_json', {detail:String}, unhex('FFFE41'), now64(3))", parameters={"detail": ANSI})
    client.command(
        "INSERT INTO model_metrics (model, model_version, labels, positives, roc_auc, log_loss, brier, as_of) "
        "VALUES ({m:String}, 1, 10, 5, 0.5, 0.7, 0.25, now64(3))", parameters={"m": CLOSING})
    client.close()
    return data


def journey(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=data.parent,
                          env={**env, "JOURNEY_DATA_DIR": str(data), "COLUMNS": "400"},
                          capture_output=True, text=True, timeout=300, errors="surrogateescape")


def assert_shown_as_text(result: subprocess.CompletedProcess[str], *literal: str) -> None:
    """Exit 0, no control character on either stream, and every ``literal`` shown as written."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "MarkupError" not in output
    controls = sorted({hex(ord(ch)) for ch in output if (ord(ch) < 32 and ch not in "\n\t") or 0x7f <= ord(ch) <= 0x9f})
    assert not controls, f"control characters reached the terminal: {controls}"
    for text in literal:
        assert text in output, f"{text!r} not shown\n{output[-3000:]}"


def test_report_shows_category_ids_as_text(data_dir: Path) -> None:
    result = journey(data_dir, "report", "--out", str(data_dir.parent / "report"))
    assert_shown_as_text(result, CLOSING, STYLE, "\\x1b[31mRED\\x1b[0m", "\\x1b]8;;http://evil.example/\\x1b\\click",
                         "\\x9b31mC1", TEX)
    assert (data_dir.parent / "report" / "categories.png").stat().st_size > 0


def test_query_shows_values_as_text(data_dir: Path) -> None:
    result = journey(data_dir, "query", "SELECT category_id FROM revenue_by_category_daily ORDER BY category_id")
    assert_shown_as_text(result, CLOSING, STYLE, "\\x1b[31mRED\\x1b[0m")


def test_query_shows_bytes_that_are_not_utf8_escaped_with_a_note(data_dir: Path) -> None:
    letters = journey(data_dir, "query", "SELECT * FROM dead_letters")
    assert_shown_as_text(letters, "\\xff\\xfeA", "\\x1b[31mRED", "not valid UTF-8")
    as_json = journey(data_dir, "query", "--format", "json", "SELECT original, detail FROM dead_letters")
    assert_shown_as_text(as_json)
    assert orjson.loads(as_json.stdout) == {"original": "\\xff\\xfeA", "detail": ANSI}


def test_query_error_quoting_markup_is_printed(data_dir: Path) -> None:
    result = journey(data_dir, "query", "SELECT '[/oops]' FROM no_such_table")
    assert result.returncode == 1, result.stderr
    assert "MarkupError" not in result.stderr and "query failed:" in result.stderr and CLOSING in result.stderr


def test_customer_shows_profile_values_as_text(data_dir: Path) -> None:
    result = journey(data_dir, "customer", CUSTOMER)
    assert_shown_as_text(result, f"customer {CUSTOMER}", STYLE, CLOSING, "\\x1b[31mRED")
    missing = journey(data_dir, "customer", "[bold]nobody[/bold]")
    assert missing.returncode == 1 and "[bold]nobody[/bold]" in missing.stderr, missing.stderr


def test_models_show_model_names_as_text(data_dir: Path) -> None:
    assert_shown_as_text(journey(data_dir, "models"), CLOSING)
