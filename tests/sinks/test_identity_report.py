"""The identified share of events and revenue and the merges per day, in `journey report` and the dashboard,
equal the same numbers computed with pandas from the events produced.

Anonymous visitors browse (some buy) on day 1 while known customers shop; once the real identity stage,
features worker and sink have stored that, two thirds of the visitors identify (days 2 and 3) and shop as
customers, and one visitor comes back anonymous. Each identify of a visitor with events merges its profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from schemas.identity import IDENTIFIED_TOPICS, PROFILE_HANDOFFS
from schemas.registry import IDENTITY_MERGES, INPUT_TOPICS, TOPIC_OF_TYPE
from sinks.access import open_reader
from sinks.dashboard import summary
from sinks.report import build_report
from tests.conftest import Backend, produce
from tests.integration.procs import WorkerProcess, caught_up, status, wait_for

pytestmark = pytest.mark.integration

PREFIX = "idrep"
VISITORS, KNOWN = 12, 4


def _line(n: int, day: int, type_: str, customer: str | None, anonymous: str | None, **fields: Any) -> dict[str, Any]:
    body = {"event_id": f"ev-{day}-{n}", "event_time": f"2026-03-0{day}T{10 + n // 60:02d}:{n % 60:02d}:00Z",
            "type": type_, **fields}
    return body | ({"customer_id": customer} if customer else {}) | ({"anonymous_id": anonymous} if anonymous else {})


def _events() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Day 1 (visitors and known customers), then days 2-3 (identify, shop as customers, one anonymous return)."""
    first: list[dict[str, Any]] = []
    for v in range(VISITORS):
        for _ in range(v % 3 + 1):
            first.append(_line(len(first), 1, "page_view", None, f"a-{v}"))
        if v % 4 == 0:
            first.append(_line(len(first), 1, "order_placed", None, f"a-{v}", order_id=f"o-a{v}", amount=10.0 + v,
                               currency="BRL" if v % 8 == 0 else "USD"))
    for k in range(KNOWN):
        first.append(_line(len(first), 1, "page_view", f"k-{k}", None))
        first.append(_line(len(first), 1, "order_placed", f"k-{k}", None, order_id=f"o-k{k}", amount=50.0 + k,
                           currency="BRL" if k % 2 else "USD"))
    second: list[dict[str, Any]] = []
    for v in range(VISITORS):
        if v % 3 == 2:
            continue
        day = 2 + v % 2
        second.append(_line(len(second), day, "identify", f"c-{v}", f"a-{v}"))
        second.append(_line(len(second), day, "product_view", f"c-{v}", None, product_id="p1"))
        second.append(_line(len(second), day, "order_placed", f"c-{v}", None, order_id=f"o-c{v}", amount=100.0 + v,
                            currency="USD"))
    second.append(_line(len(second), 3, "page_view", None, "a-0"))  # back anonymous: a-0 is linked by then
    return first, second


def _records(lines: list[dict[str, Any]]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(TOPIC_OF_TYPE[e["type"]], (e.get("customer_id") or e["anonymous_id"]).encode(), orjson.dumps(e))
            for e in lines]


def expected(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The three tables from the events alone (pandas): the definitions of sinks/identity_report.py."""
    df = pd.DataFrame(lines)
    linked = set(df.loc[df["type"] == "identify", "anonymous_id"])
    anonymous = df["customer_id"].isna()
    df["identity"] = "known"
    df.loc[anonymous & df["anonymous_id"].isin(linked), "identity"] = "identified"
    df.loc[anonymous & ~df["anonymous_id"].isin(linked), "identity"] = "anonymous"
    events = df.groupby("identity").size()
    orders = df[df["type"] == "order_placed"]
    revenue = orders.groupby(["currency", "identity"])["amount"].agg(["size", "sum"]).reset_index()
    revenue["share"] = revenue["sum"] / revenue.groupby("currency")["sum"].transform("sum")
    # A visitor with events before their identify has a profile of its own: the identify merges it.
    identifies = df[df["type"] == "identify"].assign(day=lambda d: d["event_time"].str[:10])
    per_day = identifies.groupby("day").size()
    return {
        "events": [(i, int(n), n / len(df)) for i, n in events.items()],
        "revenue": [(r.currency, r.identity, int(r.size), r.sum, r.share) for r in revenue.itertuples()],
        "merges": [(day, int(n), int(n), 0) for day, n in per_day.items()],
    }


def test_identified_share_and_merges_per_day_equal_pandas(backend: Backend, tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": PREFIX, "JOURNEY_SINK_BATCH_SECONDS": "0.2",
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2"}
    first, second = _events()
    workers = [WorkerProcess(role, env, tmp_path / f"{role}.log") for role in ("sink", "identity-stage", "features")]
    features_topics = [*sorted(IDENTIFIED_TOPICS), IDENTITY_MERGES, PROFILE_HANDOFFS]

    def settle() -> None:
        caught_up(backend.kafka, f"{PREFIX}-identity", list(INPUT_TOPICS), workers, 300)
        for _ in range(3):  # the features worker feeds two of its own inputs (handoffs, forwarded events)
            caught_up(backend.kafka, f"{PREFIX}-features", features_topics, workers, 300)
        caught_up(backend.kafka, f"{PREFIX}-sink", [*INPUT_TOPICS, IDENTITY_MERGES, "customer-features"], workers, 300)

    try:
        wait_for(lambda: all(status(f"{w.url}/healthz") == 200 for w in workers), "live workers", 120, workers)
        produce(backend.kafka, _records(first))
        settle()  # every visitor is profiled before their identify: each identify then merges
        produce(backend.kafka, _records(second))
        settle()
        with open_reader(dsn, tmp_path, direct=False) as reader:  # embedded: through the sink that owns it
            report = build_report(reader).as_dict()
            page = summary(reader)
    finally:
        codes = [worker.stop() for worker in workers]
    assert set(codes) == {0}, [w.log_tail() for w, c in zip(workers, codes, strict=True) if c]

    want = expected(first + second)
    assert {e[0] for e in want["events"]} == {"known", "identified", "anonymous"}  # the input has all three
    for events in (report["identified_events"], page["identified_events"]):
        assert [(r["identity"], r["events"]) for r in events] == [(i, n) for i, n, _ in want["events"]]
        assert [r["share"] for r in events] == pytest.approx([s for _, _, s in want["events"]])
    for revenue in (report["identified_revenue"], page["identified_revenue"]):
        assert [(r["currency"], r["identity"], r["orders"]) for r in revenue] == [w[:3] for w in want["revenue"]]
        assert [r["revenue"] for r in revenue] == pytest.approx([w[3] for w in want["revenue"]])
        assert [r["share"] for r in revenue] == pytest.approx([w[4] for w in want["revenue"]])
    got = [(str(r["day"]), r["merges"], r["links"], r["refused"]) for r in report["identity_merges"]]
    assert got == want["merges"]
    assert [(str(r["day"]), r["merges"]) for r in page["identity_merges"]] == [(d, m) for d, m, _, _ in
                                                                               reversed(want["merges"])]
