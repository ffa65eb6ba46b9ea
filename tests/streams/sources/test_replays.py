"""Dataset replays: every record valid, counts equal to pandas over the same files, stable ids, UTC order."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest

from schemas.registry import INPUT_TOPICS
from streams.sources import open_source
from streams.sources.olist import local_time
from streams.sources.record import SourceRecord


def check_valid_sorted_unique(records: list[SourceRecord]) -> Counter[str]:
    types: Counter[str] = Counter()
    ids = set()
    previous = None
    for r in records:
        event = INPUT_TOPICS[r.topic].adapter.validate_json(r.value)
        assert r.key == event.customer_id.encode()
        assert event.event_time == r.event_time and event.event_time.tzinfo == UTC
        assert previous is None or previous <= event.event_time
        previous = event.event_time
        ids.add(event.event_id)
        types[event.type] += 1
    assert len(ids) == len(records), "event ids are unique"
    return types


def test_taobao(datasets: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, stats = open_source(f"taobao:{path}")
    frame = pd.read_csv(path)
    expected = frame["behavior_type"].map({"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist",
                                           "buy": "order_placed"}).value_counts().to_dict()
    assert check_valid_sorted_unique(records) == expected
    assert stats.rows == len(frame) and not stats.skipped
    again, _ = open_source(f"taobao:{path}")
    assert [r.value for r in again] == [r.value for r in records], "replaying twice gives the same ids"


def test_olist(datasets: Path) -> None:
    directory = datasets / "olist"
    records, stats = open_source(f"olist:{directory}")
    orders = pd.read_csv(directory / "olist_orders_dataset.csv")
    reviews = pd.read_csv(directory / "olist_order_reviews_dataset.csv")
    has_text = reviews["review_comment_title"].fillna("").str.strip().ne("") | \
        reviews["review_comment_message"].fillna("").str.strip().ne("")
    types = check_valid_sorted_unique(records)
    assert types == {
        "order_placed": orders["order_purchase_timestamp"].notna().sum(),
        "order_paid": orders["order_approved_at"].notna().sum(),
        "order_shipped": orders["order_delivered_carrier_date"].notna().sum(),
        "order_delivered": orders["order_delivered_customer_date"].notna().sum(),
        "order_cancelled": (orders["order_status"] == "canceled").sum(),
        "chat_message": has_text.sum(),
    }
    assert stats.skipped == {"review_without_text": (~has_text).sum()}
    # revenue: order_placed amounts equal items + freight from the items table
    items = pd.read_csv(directory / "olist_order_items_dataset.csv")
    want = round(float((items["price"] + items["freight_value"]).sum()), 2)
    got = sum(orjson.loads(r.value).get("amount") or 0 for r in records if b'"order_placed"' in r.value)
    assert round(got, 2) == want


def test_olist_times_are_sao_paulo_local() -> None:
    # 2017-07-09 21:57:05 in Sao Paulo (UTC-3, no daylight saving in July) is 2017-07-10 00:57:05 UTC
    assert local_time("2017-07-09 21:57:05") == datetime(2017, 7, 10, 0, 57, 5, tzinfo=UTC)
    # in January 2017 Sao Paulo kept daylight saving time (UTC-2)
    assert local_time("2017-01-15 12:00:00") == datetime(2017, 1, 15, 14, 0, tzinfo=UTC)


def test_twcs_threads_and_customers(datasets: Path) -> None:
    path = datasets / "twcs_head5000.csv"
    records, stats = open_source(f"twcs:{path}")
    check_valid_sorted_unique(records)
    frame = pd.read_csv(path)
    assert stats.rows == len(frame)
    assert len(records) + sum(stats.skipped.values()) == len(frame)
    assert stats.skipped["malformed_row"] == 1, "tweet 3398 appears twice, the second time without author or text"
    by_id = {orjson.loads(r.value)["event_id"]: orjson.loads(r.value) for r in records}
    messages = list(by_id.values())
    assert len({m["conversation_id"] for m in messages}) < len(messages), "threads group messages"
    # hand-checked chain: tweet 2 (customer 115712) answers 1 (sprintcare), which answers 3 (115712), which answers 4
    from streams.sources.record import derive_event_id

    one, two, three = (by_id[derive_event_id("twcs", str(i).encode())] for i in (1, 2, 3))
    assert (one["sender_role"], one["customer_id"]) == ("agent", "115712")
    assert (two["sender_role"], two["customer_id"]) == ("customer", "115712")
    assert one["conversation_id"] == two["conversation_id"] == three["conversation_id"]
    assert two["in_reply_to"] == one["event_id"] and one["in_reply_to"] == three["event_id"]
    roles = Counter(m["sender_role"] for m in messages)
    assert roles["customer"] == int(frame["inbound"].sum())
    for m in messages:
        if "in_reply_to" in m:
            assert m["in_reply_to"] in by_id


def test_unknown_kind_and_missing_path_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known kind"):
        open_source("parquet:/x")
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_source(f"taobao:{tmp_path / 'absent.csv'}")
