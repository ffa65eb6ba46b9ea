"""Every reporting rollup equals the same aggregate computed from the raw rows, also after redelivery.

The expected values are computed here in Python from the raw tables' rows (or the source
records), not by the rollups' own SQL, so a wrong materialized view or view fails. Besides the
input events, the topics carry what the features, scoring, trainer, trigger and message
processors make of them (in-process replays), so the score, trigger and message rollups are
checked the same way (``tests/integration/reporting.py``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest

from processors.messages.config import Holdout, MessagesConfig
from processors.messages.processor import MessagesProcessor
from processors.sentiment import NEGATIVE_THRESHOLD, sentiment
from processors.triggers.processor import TriggersProcessor
from streams.sources.generator import generate
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.integration.reporting import assert_reporting_rollups_match, model_outputs
from tests.processors.messages.helpers import pipeline

pytestmark = pytest.mark.integration

BAD = [("orders", b"c1", b"{not json"), ("clickstream", b"c1", b'{"type": "teleport"}'),
       ("clickstream", b"c2", b"[]")]


def rows(client: Any, sql: str) -> list[dict[str, Any]]:
    result = client.query(sql)
    return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def monday(t: datetime) -> date:
    return (t - timedelta(days=t.weekday())).date()


def close(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                                       abs_tol=1e-6))


def expected_rollups(client: Any) -> dict[str, Any]:
    """Each rollup computed in Python from the raw tables' rows."""
    clicks = rows(client, "SELECT customer_id, event_id, event_time, type, session_id, channel, utm_source "
                          "FROM clickstream_events")
    orders = rows(client, "SELECT customer_id, event_id, event_time, type, channel, currency, amount, "
                          "item_category_ids, item_quantities, item_unit_prices FROM order_events")
    chats = rows(client, "SELECT event_time, channel, sender_role, text FROM chat_messages")
    letters = rows(client, "SELECT reason, source_topic FROM dead_letters")
    placed = [o for o in orders if o["type"] == "order_placed"]

    kpis: dict[datetime, dict[str, Any]] = defaultdict(lambda: {"visitors": set(), "sessions": set(),
                                                                "buyers": set(), "orders": 0})
    for c in clicks:
        kpi = kpis[minute(c["event_time"])]
        kpi["visitors"].add(c["customer_id"])
        if c["session_id"] is not None:
            kpi["sessions"].add(c["session_id"])
    for o in placed:
        kpis[minute(o["event_time"])]["buyers"].add(o["customer_id"])
        kpis[minute(o["event_time"])]["orders"] += 1
    kpi_rows = {m: (len(k["visitors"]), len(k["sessions"]), len(k["buyers"]), k["orders"]) for m, k in kpis.items()}

    revenue: dict[tuple[datetime, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    for o in placed:
        r = revenue[(minute(o["event_time"]), o["currency"])]
        r[0] += 1
        if o["amount"] is not None:
            r[1] += 1
            r[2] += o["amount"]
    for o in orders:
        if o["type"] == "order_refunded" and o["amount"]:
            revenue[(minute(o["event_time"]), o["currency"])][3] += o["amount"]

    steps = {"page_view": "viewers", "product_view": "product_viewers", "add_to_cart": "carters",
             "checkout_started": "checkouts"}
    funnel: dict[tuple[date, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for c in clicks:
        if c["type"] in steps:
            funnel[(c["event_time"].date(), c["channel"])][steps[c["type"]]].add(c["customer_id"])
    for o in placed:
        funnel[(o["event_time"].date(), o["channel"] or "unknown")]["buyers"].add(o["customer_id"])
    funnel_rows = {key: {step: len(v.get(step, ())) for step in (*steps.values(), "buyers")}
                   for key, v in funnel.items()}

    first: dict[str, datetime] = {}
    weeks: dict[str, set[date]] = defaultdict(set)
    for o in placed:
        first[o["customer_id"]] = min(first.get(o["customer_id"], o["event_time"]), o["event_time"])
        weeks[o["customer_id"]].add(monday(o["event_time"]))
    cohorts: Counter[tuple[date, int]] = Counter()
    for customer, ordered in weeks.items():
        cohort = monday(first[customer])
        for week in ordered:
            cohorts[(cohort, (week - cohort).days // 7)] += 1

    categories: dict[tuple[date, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for o in placed:
        for category, quantity, price in zip(o["item_category_ids"], o["item_quantities"], o["item_unit_prices"],
                                             strict=True):
            c = categories[(o["event_time"].date(), category or "unknown", o["currency"])]
            c[0] += quantity
            c[1] += quantity * (price or 0.0)
            c[2] += 1

    touches: dict[str, tuple[tuple[datetime, str], str | None]] = {}
    for c in clicks:
        touch = ((c["event_time"], c["event_id"]), c["channel"])
        touches[c["customer_id"]] = min(touches.get(c["customer_id"], touch), touch, key=lambda t: t[0])
    for o in placed:
        touch = ((o["event_time"], o["event_id"]), o["channel"])
        touches[o["customer_id"]] = min(touches.get(o["customer_id"], touch), touch, key=lambda t: t[0])
    currencies = {o["currency"] for o in placed}
    value: dict[tuple[str, str], list[Any]] = {}
    for customer, (_, channel) in touches.items():
        for currency in currencies:
            v = value.setdefault((channel or "unknown", currency), [set(), set(), 0, 0.0])
            v[0].add(customer)
    for o in placed:
        v = value[(touches[o["customer_id"]][1] or "unknown", o["currency"])]
        v[1].add(o["customer_id"])
        v[2] += 1
        v[3] += o["amount"] or 0.0
    value_rows = {k: (len(v[0]), len(v[1]), v[2], v[3]) for k, v in value.items()}

    moods: dict[tuple[date, str], list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])
    for c in chats:
        if c["sender_role"] != "customer":
            continue
        score = sentiment(c["text"])
        m = moods[(c["event_time"].date(), c["channel"])]
        m[0] += 1
        m[1] += score
        m[2] += score < NEGATIVE_THRESHOLD
        m[3] += score > -NEGATIVE_THRESHOLD

    return {"kpis": kpi_rows, "revenue": dict(revenue), "funnel": funnel_rows, "cohorts": dict(cohorts),
            "categories": dict(categories), "value": value_rows, "sentiment": dict(moods),
            "dead_letters": Counter((d["reason"], d["source_topic"]) for d in letters)}


def assert_rollups_match(client: Any) -> dict[str, Any]:
    want = expected_rollups(client)
    assert len(want["kpis"]) > 100 and len(want["cohorts"]) > 5 and want["sentiment"], "the sample is too thin"

    got = {r["minute"].replace(tzinfo=None): (r["visitors"], r["sessions"], r["buyers"], r["orders"] or 0)
           for r in rows(client, "SELECT * FROM kpis_per_minute")}
    assert got == {m.replace(tzinfo=None): v for m, v in want["kpis"].items()}
    conversions = rows(client, "SELECT visitors, buyers, conversion FROM kpis_per_minute")
    assert all(close(r["conversion"], r["buyers"] / r["visitors"] if r["visitors"] else None) for r in conversions)

    got_revenue = {(r["minute"].replace(tzinfo=None), r["currency"]): r
                   for r in rows(client, "SELECT * FROM revenue_per_minute")}
    assert set(got_revenue) == {(m.replace(tzinfo=None), c) for m, c in want["revenue"]}
    for (m, currency), (n, priced, total, refunded) in want["revenue"].items():
        r = got_revenue[(m.replace(tzinfo=None), currency)]
        assert r["orders"] == n and close(r["revenue"], total) and close(r["refunded"], refunded)
        assert close(r["average_order_value"], total / priced if priced else None)

    got_funnel = {(r["day"], r["channel"]): {k: r[k] for k in ("viewers", "product_viewers", "carters", "checkouts",
                                                                "buyers")}
                  for r in rows(client, "SELECT * FROM funnel_per_day")}
    assert got_funnel == want["funnel"]

    got_cohorts = {(r["cohort_week"], r["weeks_since"]): r for r in rows(client, "SELECT * FROM cohort_retention")}
    assert {k: r["customers"] for k, r in got_cohorts.items()} == want["cohorts"]
    for (cohort, _), r in got_cohorts.items():
        assert r["cohort_size"] == want["cohorts"][(cohort, 0)]
        assert close(r["retention"], r["customers"] / r["cohort_size"])

    got_categories = {(r["day"], r["category_id"], r["currency"]): r
                      for r in rows(client, "SELECT day, category_id, currency, sum(units) AS units, "
                                            "sum(revenue) AS revenue, sum(order_lines) AS order_lines "
                                            "FROM revenue_by_category_daily GROUP BY day, category_id, currency")}
    assert set(got_categories) == set(want["categories"])
    for key, (units, total, lines) in want["categories"].items():
        r = got_categories[key]
        assert (r["units"], r["order_lines"]) == (units, lines) and close(r["revenue"], total)

    got_value = {(r["acquisition_channel"], r["currency"]): r
                 for r in rows(client, "SELECT * FROM value_by_acquisition_channel")}
    assert set(got_value) == set(want["value"])
    for key, (customers, buyers, n, total) in want["value"].items():
        r = got_value[key]
        assert (r["customers"], r["buyers"], r["orders"]) == (customers, buyers, n) and close(r["revenue"], total)

    got_moods = {(r["day"], r["channel"]): r for r in rows(client, "SELECT * FROM sentiment_per_day")}
    assert set(got_moods) == set(want["sentiment"])
    for key, (n, total, negative, positive) in want["sentiment"].items():
        r = got_moods[key]
        assert (r["messages"], r["negative"], r["positive"]) == (n, negative, positive)
        assert math.isclose(r["average_sentiment"], total / n, abs_tol=1e-6)  # stored as Float32

    got_letters = Counter({(r["reason"], r["source_topic"]): r["dead_letters"]
                           for r in rows(client, "SELECT * FROM dead_letters_by_reason")})
    assert got_letters == want["dead_letters"] and sum(got_letters.values()) == len(BAD)
    return want


def test_rollups_equal_raw_aggregates_before_and_after_redelivery(backend: Backend) -> None:
    source = generate(customers=250, days=56, seed=23)
    records = [(r.topic, r.key, r.value) for r in source]
    assert Counter(orjson.loads(v)["type"] for t, _, v in records if t == "orders")["order_placed"] > 100
    # What the processors write for this input: profiles, scores, model metrics, triggers, guard
    # decisions and messages (30% holdout, so there is a group to compare with).
    fired, made = pipeline([(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000)) for r in source],
                           TriggersProcessor(), MessagesProcessor(MessagesConfig(holdout=Holdout(share=0.3))))
    outputs = [*model_outputs(source), *fired, *made]
    kafka = backend.fresh_topics()
    ends = dict(produce(kafka, records + BAD + outputs).end_offsets)
    client = backend.client()
    sink_until_caught_up(backend, client, ends, group="rollups")
    before = assert_rollups_match(client)
    before_reporting = assert_reporting_rollups_match(client)

    # Redelivery: a third of the input and of every output sent again, and a second sink group
    # reading everything from the start (as after lost commits): the outputs' tables then hold
    # every record at least twice until they merge. Rollups must not move.
    ends = dict(produce(kafka, records[: len(records) // 3] + BAD + outputs[::3]).end_offsets)
    sink_until_caught_up(backend, client, ends, group="rollups")
    sink_until_caught_up(backend, client, ends, group="rollups-replayed")
    assert client.command("SELECT count() FROM triggers") >= 2 * len(fired), "the redelivery did not land twice"
    after = assert_rollups_match(client)
    assert rounded(after) == rounded(before)
    assert rounded(assert_reporting_rollups_match(client)) == rounded(before_reporting)


def rounded(value: Any) -> Any:
    """Floats to 6 decimals, recursively (sums over rows read in another order differ in the last bits)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(rounded(v) for v in value)
    return value
