"""Generic mapped replay: mapping, conversions, time formats; bad rows go out for ingestion to dead-letter."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.registry import INPUT_TOPICS
from streams.sources import open_source
from streams.sources.mapped import ReadOptions, parse_mapping
from streams.sources.record import derive_event_id

RETAIL = """InvoiceNo,StockCode,Quantity,InvoiceDate,Price,CustomerID
536365,85123A,6,12/1/2010 8:26,2.55,17850
536366,22633,6,12/1/2010 8:28,1.85,17850
536367,84879,32,12/1/2010 8:34,1.69,13047
536367,84879,32,12/1/2010 8:34,1.69,13047
536368,22960,x,not a date,3.75,13047
536369,22961,1,12/1/2010 7:00,3.75,
"""
#: RETAIL's dates are all on the 1st: day-first and month-first read them differently, so the format is given.
MONTH_FIRST = ReadOptions(time_format="%m/%d/%Y %H:%M")
RETAIL_MAP = ("customer_id=CustomerID,event_time=InvoiceDate,unit_price=Price,type=:order_placed,order_id=InvoiceNo,"
              "product_id=StockCode,quantity=Quantity,currency=:GBP")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _bodies(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def _ingest(record: Any) -> Any:
    """What ingestion does: validate against the topic's contract (a failure is a dead letter)."""
    return INPUT_TOPICS[record.topic].adapter.validate_json(record.value)


def test_csv_orders_one_item_per_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "retail.csv", RETAIL)
    records, stats = open_source(f"csv:{path}", mapping=RETAIL_MAP, tz="Europe/London", options=MONTH_FIRST)
    assert stats.rows == 6 and len(records) == 6 and stats.emitted == {"order_placed": 6}
    bodies = _bodies(records)
    # 12/1/2010 is month-first (December): London is on UTC in winter
    assert [b["event_time"] for b in bodies[:4]] == ["2010-12-01T07:00:00Z", "2010-12-01T08:26:00Z",
                                                     "2010-12-01T08:28:00Z", "2010-12-01T08:34:00Z"]
    first = bodies[1]
    assert first["items"] == [{"product_id": "85123A", "quantity": 6, "unit_price": 2.55}]
    assert (first["order_id"], first["currency"], records[1].topic, records[1].key) == ("536365", "GBP", "orders",
                                                                                        b"17850")
    valid = [_ingest(r) for r in records[1:5]]
    assert len({v.event_id for v in valid}) == 4, "identical rows are distinct events"
    again, _ = open_source(f"csv:{path}", mapping=RETAIL_MAP, tz="Europe/London", options=MONTH_FIRST)
    assert [r.value for r in again] == [r.value for r in records], "ids are stable across replays"


def test_bad_rows_still_go_out_for_ingestion_to_reject(tmp_path: Path) -> None:
    path = _write(tmp_path, "retail.csv", RETAIL)
    records, _ = open_source(f"csv:{path}", mapping=RETAIL_MAP, options=MONTH_FIRST)
    no_customer, *_, unreadable = records
    assert no_customer.key == b"" and "customer_id" not in orjson.loads(no_customer.value)
    with pytest.raises(ValidationError, match="customer_id"):
        _ingest(no_customer)
    body = orjson.loads(unreadable.value)
    assert unreadable.event_time is None and body["event_time"] == "not a date", "unreadable times go last, raw"
    assert body["items"][0]["quantity"] == "x", "a value that is not a number is left for validation to judge"
    with pytest.raises(ValidationError):
        _ingest(unreadable)


def test_derived_ids_and_order_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, "shop.csv", "who,when\na,2024-01-01T00:00:00Z\na,2024-01-01T00:00:00Z\n")
    records, _ = open_source(f"csv:{path}", mapping="customer_id=who,event_time=when,type=:order_shipped")
    first, second = _bodies(records)
    assert first["event_id"].startswith("shop-") and first["event_id"] != second["event_id"]
    assert first["order_id"].startswith("shop-order-") and first["order_id"] != second["order_id"]
    assert all(_ingest(r) for r in records)


def test_jsonl_unknown_types_and_bad_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "events.jsonl",
                  '{"who": 7, "when": 1700000000, "what": "page_view", "ctx": {"url": "/home"}, "q": "x"}\n'
                  '\n'
                  '{"who": "b", "when": 1699996400, "what": "teleport"}\n'
                  'this is not json\n'
                  '{"who": "c", "when": 1700000000, "what": "search", "q": "shoes"}\n')
    mapping = "customer_id=who,event_time=when,type=what,page_url=ctx.url,query=q"
    records, stats = open_source(f"jsonl:{path}", mapping=mapping)
    assert stats.rows == 4 and stats.emitted == {"page_view": 1, "teleport": 1, "search": 1,
                                                 "(not a json object)": 1}
    teleport, page_view, search, garbage = records
    assert teleport.topic == "clickstream" and teleport.event_time == datetime(2023, 11, 14, 21, 13, 20, tzinfo=UTC)
    with pytest.raises(ValidationError):
        _ingest(teleport)
    assert _ingest(page_view).page_url == "/home" and page_view.key == b"7", "numbers become strings for ids"
    assert _ingest(search).query == "shoes"
    assert (garbage.topic, garbage.key, garbage.value, garbage.event_time) == ("clickstream", b"", b"this is not json",
                                                                               None)
    assert stats.left_out == {"page_view.query": 1}, "one mapping serves several types: the view has no query"
    routed, _ = open_source(f"jsonl:{path}", mapping=mapping, topic="orders")
    assert routed[0].topic == "orders" and routed[1].topic == "clickstream"


def test_unit_price_is_the_price_of_product_events(tmp_path: Path) -> None:
    path = _write(tmp_path, "views.csv", "u,t,p,price,qty\nu1,1700000000,p1,9.90,1\n")
    records, stats = open_source(f"csv:{path}",
                                 mapping="customer_id=u,event_time=t,type=:product_view,product_id=p,unit_price=price,"
                                         "quantity=qty")
    event = _ingest(records[0])
    assert (event.product_id, event.price) == ("p1", 9.9)
    assert stats.left_out == {"product_view.quantity": 1}


@pytest.mark.parametrize(("mapping", "message"), [
    ("", "mapping is empty"),
    ("customer_id=CustomerID,event_time=InvoiceDate", "must give 'type'"),
    ("customer_id=CustomerID,type=:page_view", "must give 'event_time'"),
    ("customer_id=CustomerID,event_time=InvoiceDate,type=:page_view,colour=Red", "unknown field 'colour'"),
    ("customer_id,event_time=InvoiceDate,type=:page_view", "'customer_id' is not field=Column"),
    ("customer_id=,event_time=InvoiceDate,type=:page_view", "not field=Column"),
    ("customer_id=CustomerID,customer_id=X,event_time=InvoiceDate,type=:page_view", "'customer_id' twice"),
    ("customer_id=CustomerID,event_time=InvoiceDate,type=:", "empty constant"),
    ("customer_id=CustomerID,event_time=InvoiceDate,type=:order_placed,items=a,product_id=b", "choose one"),
])
def test_malformed_mappings_are_named(mapping: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mapping(mapping)


def test_columns_and_zones_are_checked_up_front(tmp_path: Path) -> None:
    csv_path = _write(tmp_path, "retail.csv", RETAIL)
    with pytest.raises(ValueError, match="no column 'Nobody' in the header; columns are: InvoiceNo"):
        open_source(f"csv:{csv_path}", mapping="customer_id=Nobody,event_time=InvoiceDate,type=:page_view")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        open_source(f"csv:{csv_path}", mapping=RETAIL_MAP, tz="Mars/Olympus")
    with pytest.raises(ValueError, match="needs a mapping"):
        open_source(f"csv:{csv_path}")
    with pytest.raises(ValueError, match="not an input topic"):
        open_source(f"csv:{csv_path}", mapping=RETAIL_MAP, topic="scores")
    jsonl_path = _write(tmp_path, "e.jsonl", '{"who": "a", "when": 1700000000}\n')
    with pytest.raises(ValueError, match="no line has key 'what'"):
        open_source(f"jsonl:{jsonl_path}", mapping="customer_id=who,event_time=when,type=what")
    with pytest.raises(ValueError, match="empty file"):
        open_source(f"csv:{_write(tmp_path, 'empty.csv', '')}", mapping=RETAIL_MAP)


def test_event_ids_derive_from_the_raw_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.csv", 'who,when,text\r\na,1700000000,"two\nlines"\r\na,1700000001,plain\r\n')
    records, _ = open_source(f"csv:{path}", mapping="customer_id=who,event_time=when,type=:page_view,page_url=text")
    first, second = _bodies(records)
    assert first["event_id"] == derive_event_id("notes", b'a,1700000000,"two\nlines"')
    assert second["event_id"] == derive_event_id("notes", b"a,1700000001,plain")
    assert first["page_url"] == "two\nlines"


def test_timestamp_names_the_event_time(tmp_path: Path) -> None:
    """The mapping a shop's export most often needs: customer, timestamp, amount, a constant type."""
    path = _write(tmp_path, "retail.csv", RETAIL)
    mapping = "customer_id=CustomerID,timestamp=InvoiceDate,amount=Price,type=:order_placed"
    records, stats = open_source(f"csv:{path}", mapping=mapping, tz="Europe/London", options=MONTH_FIRST)
    bodies = _bodies(records)
    assert stats.emitted == {"order_placed": 6}
    first = next(b for b in bodies if b.get("customer_id") == "17850")
    assert first["event_time"] == "2010-12-01T08:26:00Z" and first["amount"] == 2.55
    assert parse_mapping(mapping)["event_time"] == parse_mapping(mapping.replace("timestamp", "event_time"))[
        "event_time"]
    with pytest.raises(ValueError, match="gives field 'event_time' twice"):
        parse_mapping(mapping + ",event_time=InvoiceDate")
