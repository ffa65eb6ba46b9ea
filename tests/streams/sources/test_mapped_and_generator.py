"""The generic mapped replay, pacing and the generator."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas.registry import INPUT_TOPICS, TOPIC_OF_TYPE
from streams.sources import open_source
from streams.sources.generator import Generator, generate
from streams.sources.pacing import paced
from streams.sources.record import SourceRecord

CSV = """InvoiceNo,StockCode,Quantity,InvoiceDate,Price,CustomerID
536365,85123A,6,12/1/2010 8:26,2.55,17850
536366,22633,6,12/1/2010 8:28,1.85,17850
536367,84879,32,12/1/2010 8:34,1.69,13047
536367,84879,32,12/1/2010 8:34,1.69,13047
536368,22960,x,not a date,3.75,13047
"""
MAP = ("customer_id=CustomerID,event_time=InvoiceDate,amount=Price,type=:order_placed,order_id=InvoiceNo,"
       "product_id=StockCode,quantity=Quantity")


def test_csv_mapping_builds_orders_and_leaves_bad_rows_to_ingestion(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(CSV)
    records, stats = open_source(f"csv:{path}", mapping=MAP, tz="Europe/London")
    assert stats.rows == 5 and len(records) == 5
    bodies = [orjson.loads(r.value) for r in records]
    assert bodies[0]["event_time"] == "2010-12-01T08:26:00Z" and bodies[0]["items"][0]["quantity"] == 6
    assert bodies[0]["amount"] == 2.55 and records[0].topic == "orders" and records[0].key == b"17850"
    valid = [INPUT_TOPICS["orders"].adapter.validate_json(r.value) for r in records[:4]]
    assert len({v.event_id for v in valid}) == 4, "identical rows are distinct events"
    assert bodies[-1]["event_time"] == "not a date", "unreadable rows still go out, last, for ingestion to judge"
    again, _ = open_source(f"csv:{path}", mapping=MAP, tz="Europe/London")
    assert [r.value for r in again] == [r.value for r in records]


def test_jsonl_mapping_and_unknown_type_goes_to_the_fallback_topic(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"who": "a", "when": 1700000000, "what": "page_view"}\n'
                    '{"who": "b", "when": "2023-11-14T22:13:20+01:00", "what": "teleport"}\n')
    records, _ = open_source(f"jsonl:{path}", mapping="customer_id=who,event_time=when,type=what")
    assert [r.topic for r in records] == ["clickstream", "clickstream"]
    assert orjson.loads(records[0].value)["event_time"] == "2023-11-14T21:13:20Z"


@pytest.mark.parametrize(("mapping", "message"), [
    ("customer_id=CustomerID,event_time=InvoiceDate", "must give 'type'"),
    ("customer_id=CustomerID,event_time=InvoiceDate,type=:page_view,colour=Red", "unknown field 'colour'"),
    ("customer_id,event_time=InvoiceDate,type=:page_view", "not field=Column"),
    ("customer_id=Nobody,event_time=InvoiceDate,type=:page_view", "no column 'Nobody'"),
])
def test_mapping_errors_name_the_problem(tmp_path: Path, mapping: str, message: str) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(CSV)
    with pytest.raises(ValueError, match=message):
        open_source(f"csv:{path}", mapping=mapping)


def test_pacing_follows_event_time_at_the_speedup() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = [SourceRecord("clickstream", b"k", b"{}", start + timedelta(seconds=s)) for s in (0, 10, 30)]
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    assert list(paced(records, 10.0, clock=lambda: now[0], sleep=sleep)) == records
    assert slept == [pytest.approx(1.0), pytest.approx(2.0)]
    assert list(paced(records, None, clock=lambda: now[0], sleep=sleep)) == records and len(slept) == 2


def test_generator_is_reproducible_valid_and_complete() -> None:
    first = generate(customers=300, days=20, seed=3)
    assert [r.value for r in first] == [r.value for r in generate(customers=300, days=20, seed=3)]
    assert [r.value for r in first] != [r.value for r in generate(customers=300, days=20, seed=4)]
    types: Counter[str] = Counter()
    previous = None
    for r in first:
        event = INPUT_TOPICS[r.topic].adapter.validate_json(r.value)
        types[event.type] += 1
        assert previous is None or previous <= event.event_time
        previous = event.event_time
    assert set(types) == set(TOPIC_OF_TYPE), f"missing: {set(TOPIC_OF_TYPE) - set(types)}"


def test_generator_truth_matches_the_traffic() -> None:
    generator = Generator(customers=200, days=60, seed=9)
    records = generator.records()
    last_seen: dict[str, datetime] = {}
    for r in records:
        if r.event_time is not None:
            last_seen[r.key.decode()] = r.event_time
    churned = {c for c, t in generator.truth.churn_at.items() if t is not None}
    assert 0 < len(churned) < 200
    for customer, churn in generator.truth.churn_at.items():
        if churn is not None and customer in last_seen:
            assert last_seen[customer] <= churn + timedelta(days=30), "no sessions after churn (orders may trail)"
