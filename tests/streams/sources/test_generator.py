"""The generator: reproducible, valid for every type, realistic mix, churn truth consistent with the traffic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.registry import INPUT_TOPICS, TOPIC_OF_TYPE
from streams.sources.generator import Generator, generate
from streams.sources.record import SourceRecord
from tests.streams.sources.helpers import check_records

#: Events a churned customer may still receive: the shop moves orders already placed, agents answer.
NOT_STARTED_BY_CUSTOMER = {"order_paid", "order_shipped", "order_delivered", "order_refunded"}


@pytest.fixture(scope="module")
def run() -> tuple[Generator, list[SourceRecord]]:
    generator = Generator(customers=300, days=20, seed=3)
    return generator, generator.records()


def test_same_arguments_same_bytes(run: tuple[Generator, list[SourceRecord]]) -> None:
    again = generate(customers=300, days=20, seed=3)
    assert [(r.topic, r.key, r.value, r.event_time) for r in again] == \
        [(r.topic, r.key, r.value, r.event_time) for r in run[1]]
    assert [r.value for r in generate(customers=50, days=5, seed=4)] != [r.value for r in again[:50]]


def test_every_record_is_valid_and_every_type_occurs(run: tuple[Generator, list[SourceRecord]]) -> None:
    records = run[1]
    assert len(records) > 5000
    types = check_records(records)
    # No identity events by default (the identities option makes them: test_generator_identities.py).
    expected = set(TOPIC_OF_TYPE) - {"identify", "alias"}
    assert set(types) == expected, f"missing: {expected - set(types)}"
    assert {r.topic for r in records} == set(INPUT_TOPICS)
    assert types["product_view"] > types["add_to_cart"] > types["order_placed"] >= types["order_delivered"]


def test_the_mix_looks_like_a_shop(run: tuple[Generator, list[SourceRecord]]) -> None:
    bodies = [orjson.loads(r.value) for r in run[1]]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        by_type.setdefault(body["type"], []).append(body)
    assert {b["utm_source"] for b in by_type["page_view"] if "utm_source" in b} >= {"google", "facebook", "newsletter"}
    assert {b["sender_role"] for b in by_type["chat_message"]} == {"customer", "agent", "bot"}
    assert {b["channel"] for b in by_type["chat_message"]} == {"live_chat", "email"}
    assert {(b["channel"], b["status"]) for b in by_type["consent_changed"]} >= {("email", "granted"),
                                                                               ("email", "withdrawn")}
    buyers = Counter(b["customer_id"] for b in by_type["order_placed"])
    assert any(n > 1 for n in buyers.values()), "some customers buy again"
    placed = {b["order_id"] for b in by_type["order_placed"]}
    assert all(b["order_id"] in placed for t in ("order_paid", "order_delivered") for b in by_type[t])
    chats = {b["event_id"] for b in by_type["chat_message"]}
    assert all(b["in_reply_to"] in chats for b in by_type["chat_message"] if "in_reply_to" in b)


def test_churn_truth_matches_the_traffic(run: tuple[Generator, list[SourceRecord]]) -> None:
    generator, records = run
    truth = generator.truth
    assert len(truth.churn_at) == len(truth.signup_at) == 300
    churned = {c for c, t in truth.churn_at.items() if t is not None}
    assert 60 < len(churned) < 200
    end = generator.start + timedelta(days=20)
    first_seen: dict[str, datetime] = {}
    for record in records:
        body = orjson.loads(record.value)
        customer, when = body["customer_id"], record.event_time
        assert when is not None and generator.start <= when < end
        first_seen.setdefault(customer, when)
        started_by_customer = body["type"] not in NOT_STARTED_BY_CUSTOMER and body.get("sender_role") not in (
            "agent", "bot") and body.get("reason") != "payment_failed"
        if started_by_customer and customer in churned:
            assert when < truth.churn_at[customer], f"{customer} acted after churning: {body}"
    assert first_seen == truth.signup_at
    some = next(iter(churned))
    assert truth.churned(some, truth.churn_at[some]) and not truth.churned(some, truth.signup_at[some])


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="days > 0"):
        Generator(days=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        Generator(start=datetime(2024, 1, 1))
    assert generate(customers=0) == []
    later = generate(customers=5, days=2, start=datetime(2025, 6, 1, tzinfo=UTC))
    assert later and all(r.event_time is not None and r.event_time.year == 2025 for r in later)


def test_each_customer_reports_one_real_time_zone_on_landings_and_consent(
        run: tuple[Generator, list[SourceRecord]]) -> None:
    from zoneinfo import available_timezones

    zones: dict[bytes, set[str]] = {}
    landings = consents = 0
    for record in run[1]:
        body = orjson.loads(record.value)
        landing = body["type"] == "page_view" and (body["page_url"] == "/" or body["page_url"].startswith("/?"))
        if landing or body["type"] == "consent_changed":
            landings += body["type"] == "page_view"
            consents += body["type"] == "consent_changed"
            zones.setdefault(record.key, set()).add(body["time_zone"])
        else:
            assert "time_zone" not in body, body["type"]
    assert landings > 1000 and consents > 100
    assert all(len(z) == 1 for z in zones.values()), "one zone per customer"
    assert set().union(*zones.values()) <= available_timezones() | {"UTC"}
    assert len(set().union(*zones.values())) >= 5, "customers live in several zones"
