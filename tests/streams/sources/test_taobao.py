"""Taobao replay: every record valid, counts equal pandas over the same CSV, stable ids, bad rows counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest

from schemas.registry import INPUT_TOPICS
from streams.sources import open_source
from streams.sources.stats import ReplayStats
from streams.sources.taobao import taobao
from tests.streams.sources.helpers import Replay, check_records

TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist", "buy": "order_placed"}


def test_every_record_is_valid_and_counts_equal_pandas(taobao_replay: Replay, data_dir: Path) -> None:
    records, stats = taobao_replay
    frame = pd.read_csv(data_dir / "taobao_userbehavior_sample.csv")
    expected = frame["behavior_type"].map(TYPES).value_counts().to_dict()
    assert check_records(records) == expected
    assert stats.emitted == expected and stats.rows == len(frame) and not stats.skipped
    topics = {r.topic for r in records}
    assert topics == {"clickstream", "orders"}
    per_customer = frame.groupby(frame["user_id"].astype(str)).size().to_dict()
    keys = pd.Series([r.key.decode() for r in records]).value_counts().to_dict()
    assert keys == per_customer, "customer_id is user_id"


def test_replaying_twice_gives_the_same_bytes(taobao_replay: Replay, data_dir: Path) -> None:
    again, _ = open_source(f"taobao:{data_dir / 'taobao_userbehavior_sample.csv'}")
    assert [r.value for r in again] == [r.value for r in taobao_replay[0]]


def test_orders_have_items_but_no_price(taobao_replay: Replay) -> None:
    orders = [orjson.loads(r.value) for r in taobao_replay[0] if r.topic == "orders"]
    assert orders and all(o["type"] == "order_placed" and "amount" not in o for o in orders)
    assert all(o["order_id"].startswith("taobao-order-") and o["channel"] == "app" for o in orders)
    assert all(o["items"] == [{"product_id": o["items"][0]["product_id"], "category_id": o["items"][0]["category_id"],
                               "quantity": 1}] for o in orders)
    assert len({o["order_id"] for o in orders}) == len(orders)


def test_first_row_maps_field_by_field(taobao_replay: Replay) -> None:
    # first data row: 1,2268318,2520377,pv,1511544070
    rows = [orjson.loads(r.value) for r in taobao_replay[0] if r.key == b"1"]
    row = next(r for r in rows if r["product_id"] == "2268318" and r["type"] == "product_view")
    assert row["category_id"] == "2520377" and row["channel"] == "app"
    assert row["event_time"] == datetime.fromtimestamp(1511544070, UTC).isoformat().replace("+00:00", "Z")


def test_identical_rows_are_distinct_events_and_bad_rows_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"  # the published file has no header row
    path.write_text("1,10,100,pv,1511544070\n"
                    "1,10,100,pv,1511544070\n"
                    "2,11,101,buy,1511544000\n"
                    "3,12,102,share,1511544000\n"
                    "4,13,103,pv,yesterday\n"
                    "5,14,104,pv\n"
                    " ,15,105,cart,1511544000\n")
    records = taobao(path, stats := ReplayStats())
    assert [r.key for r in records] == [b"2", b"1", b"1"], "sorted by time, file order kept for ties"
    assert len({orjson.loads(r.value)["event_id"] for r in records}) == 3
    assert stats.rows == 7 and stats.emitted == {"product_view": 2, "order_placed": 1}
    assert stats.skipped == {"unknown_behavior_type": 1, "bad_timestamp": 1, "malformed_row": 1, "bad_identifier": 1}
    for record in records:
        INPUT_TOPICS[record.topic].adapter.validate_json(record.value)


def test_a_foreign_csv_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not a Taobao UserBehavior file"):
        taobao(path)
