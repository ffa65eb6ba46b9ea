"""Mapped CSV replay of real-world exports: dialects, decimal commas, encodings, field counts, dates, dry run."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.registry import DEAD_LETTERS, INPUT_TOPICS
from schemas.validation import Limits
from streams.sources import ReadOptions, open_source
from streams.sources.check import check, mostly_dead
from streams.sources.csvfile import sniff_delimiter

ORDERS = "customer_id=cust,event_time=when,amount=total,type=:order_placed,currency=:EUR"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _write(tmp_path: Path, text: str, name: str = "shop.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _orders(records: list[Any]) -> list[tuple[str, datetime, float | None]]:
    """(customer, event time, amount) of every record, as ingestion reads them."""
    events = [INPUT_TOPICS[r.topic].adapter.validate_json(r.value) for r in records]
    return [(e.customer_id, e.event_time, e.amount) for e in events]


def test_a_row_with_fewer_or_more_fields_than_the_header_is_a_dead_letter_with_its_line(tmp_path: Path) -> None:
    """Issue 17 item 11: ``c14,2024-03-01T10:00:00Z`` under ``cust,when,total`` was an order with no amount."""
    path = _write(tmp_path, "cust,when,total\nc13,2024-03-01T09:00:00Z,5.00\nc14,2024-03-01T10:00:00Z\n"
                            "c15,2024-03-01T11:00:00Z,7.00,extra\n")
    records, stats = open_source(f"csv:{path}", mapping=ORDERS)
    assert _orders(records[:1]) == [("c13", datetime(2024, 3, 1, 9, tzinfo=UTC), 5.0)]
    letters = [orjson.loads(r.value) for r in records[1:]]
    assert [r.topic for r in records[1:]] == [DEAD_LETTERS, DEAD_LETTERS]
    assert [(d["reason"], d["detail"], d["source_topic"], d["source_offset"]) for d in letters] == [
        ("wrong_field_count", "shop.csv line 3: 2 fields, fewer than the header's 3", "orders", 3),
        ("wrong_field_count", "shop.csv line 4: 4 fields, more than the header's 3", "orders", 4)]
    assert base64.b64decode(letters[0]["original"]) == b"c14,2024-03-01T10:00:00Z"
    assert stats.dead_letters == {"wrong_field_count": 2} and stats.emitted == {"order_placed": 1}
    twice = _write(tmp_path, "cust,when,total\nc14,2024-03-01T10:00:00Z\nc14,2024-03-01T10:00:00Z\n", "twice.csv")
    first, second = (orjson.loads(r.value) for r in open_source(f"csv:{twice}", mapping=ORDERS)[0])
    assert first["dead_letter_id"] != second["dead_letter_id"], "two identical rows are two dead letters"
    again = [orjson.loads(r.value)["dead_letter_id"] for r in open_source(f"csv:{twice}", mapping=ORDERS)[0]]
    assert again == [first["dead_letter_id"], second["dead_letter_id"]], "stable across replays"


def test_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    """Issue 19 item 2: a semicolon file is sniffed; ``12,50`` is 12.5 with --decimal ,."""
    path = _write(tmp_path, "cust;when;total\nc1;2024-02-01 10:00;12,50\nc2;2024-02-01 11:00;1.234,5\n")
    records, stats = open_source(f"csv:{path}", mapping=ORDERS, options=ReadOptions(decimal=","))
    assert _orders(records) == [("c1", datetime(2024, 2, 1, 10, tzinfo=UTC), 12.5),
                                ("c2", datetime(2024, 2, 1, 11, tzinfo=UTC), 1234.5)]
    records, stats = open_source(f"csv:{path}", mapping=ORDERS)
    assert list(stats.hints.values()) == [
        "column 'total' has numbers with a decimal comma (e.g. '12,50'): pass --decimal ,"]
    report = check(records, stats, Limits(), NOW)
    assert report.dead_letters == {"invalid_field": 2}
    assert "--decimal ," in "\n".join(report.lines())


def test_a_delimiter_that_is_not_sniffed_is_named_in_the_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "cust;when;total\nc1;2024-02-01 10:00;12,50\n")
    with pytest.raises(ValueError, match=r"no column 'cust'.*pass --delimiter"):
        open_source(f"csv:{path}", mapping=ORDERS, options=ReadOptions(delimiter=","))
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n") == "\t" and sniff_delimiter("a|b\n1|2\n") == "|"
    assert sniff_delimiter('a,b\n"x;y",2\n') == ","
    assert ReadOptions(delimiter="tab").delimiter == ReadOptions(delimiter="\\t").delimiter == "\t"


def test_encodings_boms_and_quoted_newlines(tmp_path: Path) -> None:
    text = 'cust,when,total,note\nJosé,2024-02-01 10:00,3.5,"two\nlines"\n'
    latin = _write(tmp_path, text, "latin.csv", "latin-1")
    with pytest.raises(ValueError, match=r"latin\.csv: not utf-8 text .*pass --encoding"):
        open_source(f"csv:{latin}", mapping=ORDERS)
    records, _ = open_source(f"csv:{latin}", mapping=ORDERS, options=ReadOptions(encoding="latin-1"))
    assert _orders(records) == [("José", datetime(2024, 2, 1, 10, tzinfo=UTC), 3.5)]
    for encoding in ("utf-8-sig", "utf-16"):
        path = _write(tmp_path, text, f"{encoding}.csv", encoding)
        records, stats = open_source(f"csv:{path}", mapping=ORDERS)
        assert _orders(records) == [("José", datetime(2024, 2, 1, 10, tzinfo=UTC), 3.5)], encoding
        assert stats.rows == 1


def test_real_world_dates_decided_per_column(tmp_path: Path) -> None:
    """Issue 19 item 1: ``19970101`` is a date in --tz (not 1970); dd/mm/yyyy is day-first for every row."""
    compact = _write(tmp_path, "cust,when,total\nc1,19970101,1\nc2,19970712,2\n", "compact.csv")
    records, stats = open_source(f"csv:{compact}", mapping=ORDERS, tz="Europe/London")
    assert [t for _, t, _ in _orders(records)] == [datetime(1997, 1, 1, tzinfo=UTC),
                                                   datetime(1997, 7, 11, 23, tzinfo=UTC)]
    assert stats.time_formats == {"when": "YYYYMMDD"}
    days = _write(tmp_path, "cust,when,total\nc1,01/02/2024,1\nc2,13/02/2024,2\nc3,05/03/2024,3\n", "days.csv")
    records, _ = open_source(f"csv:{days}", mapping=ORDERS)
    assert [t for _, t, _ in _orders(records)] == [datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 13, tzinfo=UTC),
                                                   datetime(2024, 3, 5, tzinfo=UTC)]
    ambiguous = _write(tmp_path, "cust,when,total\nc1,01/02/2024,1\nc2,05/03/2024,2\n", "ambiguous.csv")
    with pytest.raises(ValueError, match=r"ambiguous\.csv: column 'when' is ambiguous.*--time-format"):
        open_source(f"csv:{ambiguous}", mapping=ORDERS)
    records, _ = open_source(f"csv:{ambiguous}", mapping=ORDERS, options=ReadOptions(time_format="%m/%d/%Y"))
    assert [t for _, t, _ in _orders(records)] == [datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 5, 3, tzinfo=UTC)]


def test_unreadable_times_are_counted_before_the_run(tmp_path: Path) -> None:
    path = _write(tmp_path, "cust,when,total\nc1,2024-02-01 10:00,1\nc2,soon,2\nc3,2024-02-03 10:00,3\n")
    records, stats = open_source(f"csv:{path}", mapping=ORDERS)
    assert stats.unreadable_times == 1
    assert "unreadable times: 1 rows (dead letters: invalid_timestamp)" in stats.describe()
    report = check(records, stats, Limits(), NOW)
    assert (report.first, report.last) == (datetime(2024, 2, 1, 10, tzinfo=UTC), datetime(2024, 2, 3, 10, tzinfo=UTC))
    assert report.dead_letters == {"invalid_timestamp": 1}
    assert report.examples["invalid_timestamp"][0].startswith(
        "line 3: order_placed.event_time: must be an ISO 8601 date and time")


def test_a_mapping_that_dead_letters_most_records_is_warned_about(tmp_path: Path) -> None:
    """Issue 19 item 2: ``quantity`` mapped without ``product_id`` dead-letters every row as missing_id."""
    path = _write(tmp_path, "cust,when,qty\n" + "".join(f"c{i},2024-02-01 10:{i:02d},2\n" for i in range(50)))
    mapping = "customer_id=cust,event_time=when,quantity=qty,type=:order_placed"
    records, _ = open_source(f"csv:{path}", mapping=mapping)
    warning = mostly_dead(records, Limits(), NOW)
    assert warning is not None and warning.startswith(
        "50 of 50 records sampled would be dead letters, most as missing_id (50: order_placed.items.0.product_id: "
        "Field required)")
    fine, _ = open_source(f"csv:{path}", mapping="customer_id=cust,event_time=when,type=:order_placed")
    assert mostly_dead(fine, Limits(), NOW) is None
