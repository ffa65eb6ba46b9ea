"""Olist replay: every record valid, counts and amounts equal pandas over the same CSVs, Sao Paulo time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from streams.sources import open_source
from streams.sources.olist import local_time, olist
from tests.streams.sources.helpers import Replay, check_records


@pytest.fixture(scope="module")
def tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    directory = data_dir / "olist"
    return {name: pd.read_csv(directory / f"olist_{name}_dataset.csv")
            for name in ("orders", "order_items", "order_payments", "order_reviews", "customers")}


@pytest.fixture(scope="module")
def bodies(olist_replay: Replay) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in olist_replay[0]]


def _has_text(reviews: pd.DataFrame) -> pd.Series:
    return (reviews["review_comment_title"].fillna("").str.strip().ne("")
            | reviews["review_comment_message"].fillna("").str.strip().ne(""))


def test_every_record_is_valid_and_counts_equal_pandas(olist_replay: Replay, tables: dict[str, pd.DataFrame]) -> None:
    records, stats = olist_replay
    orders, reviews = tables["orders"], tables["order_reviews"]
    has_text = _has_text(reviews)
    expected = {
        "order_placed": int(orders["order_purchase_timestamp"].notna().sum()),
        "order_paid": int(orders["order_approved_at"].notna().sum()),
        "order_shipped": int(orders["order_delivered_carrier_date"].notna().sum()),
        "order_delivered": int(orders["order_delivered_customer_date"].notna().sum()),
        "order_cancelled": int((orders["order_status"] == "canceled").sum()),
        "chat_message": int(has_text.sum()),
    }
    assert check_records(records) == expected
    assert expected["order_placed"] == len(orders) == 8135 and 4100 < expected["chat_message"] < 4300
    assert stats.emitted == expected
    assert stats.rows == len(orders) + len(reviews)
    assert stats.skipped == {"review_without_text": int((~has_text).sum())}


def test_customers_are_persons(bodies: list[dict[str, Any]], tables: dict[str, pd.DataFrame]) -> None:
    person = tables["customers"].set_index("customer_id")["customer_unique_id"]
    expected = tables["orders"].set_index("order_id")["customer_id"].map(person).to_dict()
    placed = {b["order_id"]: b["customer_id"] for b in bodies if b["type"] == "order_placed"}
    assert placed == expected
    assert len(set(placed.values())) == tables["customers"]["customer_unique_id"].nunique()


def test_amounts_equal_the_items_and_payments(bodies: list[dict[str, Any]], tables: dict[str, pd.DataFrame]) -> None:
    items, payments = tables["order_items"], tables["order_payments"]
    every_order = tables["orders"]["order_id"]
    total = (items["price"] + items["freight_value"]).groupby(items["order_id"]).sum().round(2)
    total = total.reindex(every_order, fill_value=0.0)  # an order without item rows sold nothing
    freight = items["freight_value"].groupby(items["order_id"]).sum().round(2).reindex(every_order, fill_value=0.0)
    paid = payments["payment_value"].groupby(payments["order_id"]).sum().round(2)
    placed = {b["order_id"]: b for b in bodies if b["type"] == "order_placed"}
    assert {k: b["amount"] for k, b in placed.items()} == pytest.approx(total.to_dict())
    assert {k: b["freight"] for k, b in placed.items()} == pytest.approx(freight.to_dict())
    assert sum(len(b["items"]) for b in placed.values()) == len(items)
    assert all(b["currency"] == "BRL" for b in placed.values())
    approved = set(tables["orders"].dropna(subset=["order_approved_at"])["order_id"])
    expected_paid = {k: v for k, v in paid.to_dict().items() if k in approved}
    got_paid = {b["order_id"]: b["amount"] for b in bodies if b["type"] == "order_paid" and "amount" in b}
    assert got_paid == pytest.approx(expected_paid)


def test_a_known_order_field_by_field(bodies: list[dict[str, Any]]) -> None:
    # a4591c265e18cb1dcee52889e2d8acc3: bought 2017-07-09 21:57:05 in Sao Paulo (UTC-3 in July)
    mine = {b["type"]: b for b in bodies if b.get("order_id") == "a4591c265e18cb1dcee52889e2d8acc3"}
    assert set(mine) == {"order_placed", "order_paid", "order_shipped", "order_delivered"}
    assert mine["order_placed"]["event_time"] == "2017-07-10T00:57:05Z"
    assert mine["order_paid"]["event_time"] == "2017-07-10T01:10:13Z"
    assert mine["order_delivered"]["event_time"] == "2017-07-26T13:57:55Z"


def test_payment_type_is_that_of_the_largest_payment(bodies: list[dict[str, Any]]) -> None:
    # 02ec4da9d03014f06d711d60eb37cc22 paid 75.97 by voucher and 29.11 by credit card in 2 installments
    paid = next(b for b in bodies if b["type"] == "order_paid" and b["order_id"] == "02ec4da9d03014f06d711d60eb37cc22")
    assert (paid["payment_type"], paid["installments"], paid["amount"]) == ("voucher", 2, 105.08)


def test_cancellations_take_the_latest_known_time(bodies: list[dict[str, Any]]) -> None:
    # 714fb133a6730ab81fa1d3c1b2007291: canceled; last known time is the carrier hand-over 2018-01-29 22:33:25
    # (Sao Paulo summer time, UTC-2)
    cancelled = next(b for b in bodies
                     if b["type"] == "order_cancelled" and b["order_id"] == "714fb133a6730ab81fa1d3c1b2007291")
    assert cancelled["event_time"] == "2018-01-30T00:33:25Z"


def test_reviews_with_text_are_customer_messages(bodies: list[dict[str, Any]]) -> None:
    # review 0c9b6ca9b3beaf0fd5d621f63844ea01: score 5, title "prazo entrega" and a message, created 2018-08-26
    review = next(b for b in bodies if b.get("conversation_id") == "0c9b6ca9b3beaf0fd5d621f63844ea01")
    assert review["text"].startswith("prazo entrega\nEspero receber esta semana")
    assert (review["rating"], review["language"], review["channel"], review["sender_role"]) == (5, "pt", "review",
                                                                                               "customer")
    assert review["event_time"] == "2018-08-26T03:00:00Z"


def test_sao_paulo_local_times() -> None:
    assert local_time("2017-07-09 21:57:05") == datetime(2017, 7, 10, 0, 57, 5, tzinfo=UTC)  # UTC-3
    assert local_time("2017-01-15 12:00:00") == datetime(2017, 1, 15, 14, 0, tzinfo=UTC)  # summer time, UTC-2
    assert local_time("") is None


def test_replaying_twice_gives_the_same_bytes(olist_replay: Replay, data_dir: Path) -> None:
    again, _ = open_source(f"olist:{data_dir / 'olist'}")
    assert [r.value for r in again] == [r.value for r in olist_replay[0]]


def test_per_order_ids_name_each_order_by_its_own_id_and_the_person_as_loyalty_id(
        bodies: list[dict[str, Any]], data_dir: Path, tables: dict[str, pd.DataFrame]) -> None:
    """The identity test's replay: the same events, each under its order's per-order id, linked by the person."""
    order_customer = dict(zip(tables["orders"]["order_id"], tables["orders"]["customer_id"], strict=True))
    reviewed: dict[str, set[str]] = {}  # a review id can cover several orders
    for review_id, order_id in zip(tables["order_reviews"]["review_id"], tables["order_reviews"]["order_id"],
                                   strict=True):
        reviewed.setdefault(review_id, set()).add(order_customer[order_id])
    linked = [orjson.loads(r.value) for r in olist(data_dir / "olist", per_order_ids=True)]
    assert [b["event_id"] for b in linked] == [b["event_id"] for b in bodies]
    for plain, body in zip(bodies, linked, strict=True):
        assert body["anonymous_id"] == body["customer_id"]
        if "order_id" in body:
            assert body["anonymous_id"] == order_customer[body["order_id"]]
        else:
            assert body["anonymous_id"] in reviewed[body["conversation_id"]]
        assert body["loyalty_id"] == plain["customer_id"]  # the person
        assert {k: v for k, v in body.items() if k not in ("customer_id", "anonymous_id", "loyalty_id")} == \
            {k: v for k, v in plain.items() if k != "customer_id"}
