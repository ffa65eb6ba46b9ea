"""`journey run --replay csv:...` of real-world exports: semicolons, decimal commas, dd/mm/yyyy, YYYYMMDD.

The stored orders' times and amounts are compared exactly with the values written in the files;
a row with a missing field is a dead letter with its line; a dry run (`--check`) starts nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.test_cli_run import journey, rows

pytestmark = pytest.mark.integration

MAPPING = "customer_id=Customer,event_time=Date,amount=Total,type=:order_placed,order_id=Invoice,currency=:EUR"
#: A European shop's export: semicolons, decimal commas, day-first dates (one day > 12), Paris local time.
EUROPEAN = """Invoice;Customer;Date;Total
F-1;c1;01/02/2024 10:00;12,50
F-2;c2;13/02/2024 09:30;1.234,05
F-3;c1;05/07/2024 23:15;0,99
F-4;c3;06/07/2024
"""
#: Paris is UTC+1 in February and UTC+2 in July.
EXPECTED_EUROPEAN = [
    ("F-1", "c1", datetime(2024, 2, 1, 9, 0, tzinfo=UTC), 12.5),
    ("F-2", "c2", datetime(2024, 2, 13, 8, 30, tzinfo=UTC), 1234.05),
    ("F-3", "c1", datetime(2024, 7, 5, 21, 15, tzinfo=UTC), 0.99),
]
#: A purchase export with compact dates (once read as unix seconds: 1970-08-20).
COMPACT = """Invoice;Customer;Date;Total
P-1;c4;19970101;3,00
P-2;c5;19970712;4,25
"""
EXPECTED_COMPACT = [
    ("P-1", "c4", datetime(1996, 12, 31, 23, 0, tzinfo=UTC), 3.0),
    ("P-2", "c5", datetime(1997, 7, 11, 22, 0, tzinfo=UTC), 4.25),
]


def _orders(cwd: Path) -> list[tuple[str, str, datetime, float]]:
    stored = rows(cwd, "SELECT order_id, customer_id, toUnixTimestamp64Milli(event_time) AS ms, amount "
                       "FROM order_events ORDER BY order_id")
    return [(str(r["order_id"]), str(r["customer_id"]), datetime.fromtimestamp(int(r["ms"]) / 1000, UTC),
             float(r["amount"])) for r in stored]  # type: ignore[arg-type]


def test_real_world_csv_exports_are_stored_exactly(tmp_path: Path) -> None:
    european = tmp_path / "european.csv"
    european.write_text(EUROPEAN, encoding="utf-8")
    compact = tmp_path / "compact.csv"
    compact.write_text(COMPACT, encoding="utf-8")

    dry = journey("run", "--replay", f"csv:{european}", "--map", MAPPING, "--decimal", ",", "--tz", "Europe/Paris",
                  "--check", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "column 'Date': times read as %d/%m/%Y %H:%M" in dry.stderr
    assert "event time from 2024-02-01T09:00:00+00:00 to 2024-07-05T21:15:00+00:00" in dry.stderr
    assert "3 records will be accepted, 1 will be dead letters" in dry.stderr
    assert "wrong_field_count: 1" in dry.stderr and "european.csv line 5: 3 fields" in dry.stderr
    assert {p.name for p in (tmp_path / ".journey").iterdir()} <= {"logs", "privacy.key"}, "nothing started"

    ambiguous = journey("run", "--replay", f"csv:{compact}", "--map", MAPPING.replace("Date", "Invoice"),
                        "--check", cwd=tmp_path)
    assert ambiguous.returncode == 2 and "column 'Invoice' has no value read as a time" in ambiguous.stderr
    assert "Traceback" not in ambiguous.stderr

    first = journey("run", "--replay", f"csv:{european}", "--map", MAPPING, "--decimal", ",", "--tz", "Europe/Paris",
                    cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _orders(tmp_path) == EXPECTED_EUROPEAN
    letters = rows(tmp_path, "SELECT reason, detail, source_topic, source_offset FROM dead_letters")
    assert letters == [{"reason": "wrong_field_count", "detail": "european.csv line 5: 3 fields, fewer than the "
                        "header's 4", "source_topic": "orders", "source_offset": 5}]

    second = journey("run", "--replay", f"csv:{compact}", "--map", MAPPING, "--decimal", ",", "--tz", "Europe/Paris",
                     cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _orders(tmp_path) == EXPECTED_EUROPEAN + EXPECTED_COMPACT
