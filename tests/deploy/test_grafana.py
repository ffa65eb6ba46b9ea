"""The Grafana dashboard: every panel's SQL runs against the real schema (chDB with sinks/schema.sql) and
returns what the rows inserted say, with Grafana's ClickHouse macros expanded as the plugin does."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client

from sinks.client import connect
from tests.conftest import ROOT, reset_clickhouse

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "journey.json"
DATASOURCE_UID = "journey-clickhouse"
FROM, TO = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC)  # the dashboard's time range


def expand_macros(sql: str, start: datetime, end: datetime) -> str:
    """Grafana's ClickHouse plugin macros (grafana-clickhouse-datasource 4.x) as it expands them."""
    def seconds(t: datetime) -> str:
        return f"toDateTime({int(t.timestamp())})"

    def millis(t: datetime) -> str:
        return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"

    def date(t: datetime) -> str:
        return f"toDate('{t:%Y-%m-%d}')"

    def between(render: Any) -> Any:
        return lambda m: f"{m[1]} >= {render(start)} AND {m[1]} <= {render(end)}"

    sql = re.sub(r"\$__timeFilter_ms\(\s*([^)]+?)\s*\)", between(millis), sql)
    sql = re.sub(r"\$__timeFilter\(\s*([^)]+?)\s*\)", between(seconds), sql)
    sql = re.sub(r"\$__dateFilter\(\s*([^)]+?)\s*\)", between(date), sql)
    for name, value in (("fromTime_ms", millis(start)), ("toTime_ms", millis(end)), ("fromTime", seconds(start)),
                        ("toTime", seconds(end)), ("interval_s", "60")):
        sql = sql.replace(f"$__{name}", value)
    sql = re.sub(r"\$__timeInterval\(\s*([^)]+?)\s*\)", r"toStartOfInterval(toDateTime(\1), INTERVAL 60 second)", sql)
    assert "$__" not in sql and "${" not in sql, f"a macro or variable the test does not know: {sql}"
    return sql


def panels() -> list[dict[str, Any]]:
    return json.loads(DASHBOARD.read_text())["panels"]


@pytest.fixture(scope="module")
def client(chdb_path: Path) -> Iterator[Client]:
    """The session's chDB with the schema and a small known history (the materialized views fill the rollups)."""
    client = connect(f"chdb://{chdb_path}")
    reset_clickhouse(client)
    common = "schema_version, source_partition, source_offset, ingested_at"
    client.command(f"""
        INSERT INTO clickstream_events (event_id, customer_id, event_time, type, session_id, channel, product_id,
                                        category_id, {common})
        SELECT concat('c', toString(number)), concat('u', toString(number % 5)),
               toDateTime64('2024-05-02 10:00:00', 3, 'UTC') + number * 60,
               ['page_view', 'product_view', 'add_to_cart', 'checkout_started'][number % 4 + 1],
               concat('s', toString(number % 7)), ['web', 'app'][number % 2 + 1], 'p1', 'shoes', 1, 0, number, now()
        FROM numbers(40)""")
    client.command(f"""
        INSERT INTO order_events (event_id, customer_id, event_time, type, order_id, currency, amount, channel,
                                  item_product_ids, item_category_ids, item_quantities, item_unit_prices, {common})
        SELECT concat('o', toString(number)), concat('u', toString(number % 3)),
               toDateTime64('2024-05-02 11:00:00', 3, 'UTC') + number * 86400 * 2, 'order_placed',
               concat('order-', toString(number)), 'EUR', 25.0, 'web', ['p1'], ['shoes'], [1], [25.0], 1, 0, number,
               now()
        FROM numbers(3)""")
    client.command(f"""
        INSERT INTO chat_messages (event_id, customer_id, event_time, type, conversation_id, sender_role, channel,
                                   text, sentiment, {common})
        VALUES ('m1', 'u1', '2024-05-03 09:00:00', 'chat_message', 'k1', 'customer', 'live_chat', 'broken!', -0.6,
                1, 0, 0, now())""")
    client.command("""
        INSERT INTO dead_letters (dead_letter_id, source_topic, source_partition, source_offset, reason, detail, key,
                                  original, received_at)
        VALUES ('d1', 'clickstream', 0, 9, 'malformed_json', 'not JSON', 'u1', 'e30=', '2024-05-02 12:00:00'),
               ('d2', 'orders', 1, 3, 'missing_id', 'order_id', 'u2', 'e30=', '2024-05-02 12:01:00')""")
    client.command("""
        INSERT INTO customer_profile_history (customer_id, as_of, events_total, stage, segments, orders_total,
                                              revenue_total, cart_value, features, emitted_at)
        VALUES ('u1', '2024-05-02 10:00:00', 3, 'browsing', [], 0, 0, 0, '{}', now()),
               ('u1', '2024-05-03 10:00:00', 9, 'customer', [], 1, 25, 0, '{}', now()),
               ('u2', '2024-05-02 10:00:00', 4, 'browsing', [], 0, 0, 0, '{}', now())""")
    # Scores: u1's churn score was re-emitted with a later scored_at (FINAL keeps that one, band 'high').
    client.command("""
        INSERT INTO scores (score_id, customer_id, model, model_version, scored_at, probability, band, cold_start,
                            top_features, emitted_at)
        VALUES ('s1', 'u1', 'churn', 1, '2024-05-02 10:00:00', 0.1, 'low', false, {}, now()),
               ('s2', 'u1', 'churn', 2, '2024-05-03 10:00:00', 0.8, 'high', false, {}, now()),
               ('s3', 'u2', 'churn', 2, '2024-05-03 10:00:00', 0.2, 'low', false, {}, now()),
               ('s4', 'u1', 'purchase_propensity', 2, '2024-05-03 10:00:00', 0.4, 'medium', false, {}, now()),
               ('s5', 'u2', 'purchase_propensity', 1, '2024-05-03 10:00:00', 0.5, 'high', true, {}, now())""")
    client.command("""
        INSERT INTO model_metrics (model, model_version, labels, positives, roc_auc, log_loss, brier, as_of, emitted_at)
        VALUES ('churn', 1, 100, 10, NULL, NULL, NULL, '2024-05-02 09:00:00', now()),
               ('churn', 1, 200, 25, 0.7, 0.5, 0.2, '2024-05-02 10:00:00', now()),
               ('churn', 2, 300, 40, 0.75, 0.45, 0.18, '2024-05-03 10:00:00', now()),
               ('churn', 2, 400, 50, 0.9, 0.4, 0.1, '2024-06-01 10:00:00', now())""")
    # Orders (above): u0 on 05-02 11:00, u1 on 05-04 11:00, u2 on 05-06 11:00.
    # t1 messages u1 two hours before an order (converted); t2 is held out for u2, who orders anyway
    # (converted); t3 messages u0 a day after u0's order (not converted); t4 is suppressed by consent.
    client.command("""
        INSERT INTO triggers (trigger_id, customer_id, trigger, fired_at, fired_by, service, reason, products, context,
                              emitted_at)
        VALUES ('t1', 'u1', 'cart_abandoned', '2024-05-04 09:00:00', 'timer', false, '', [], '{}', now()),
               ('t2', 'u2', 'cart_abandoned', '2024-05-06 08:00:00', 'timer', false, '', [], '{}', now()),
               ('t3', 'u0', 'cart_abandoned', '2024-05-03 10:00:00', 'timer', false, '', [], '{}', now()),
               ('t4', 'u3', 'welcome', '2024-05-02 12:00:00', 'event', false, '', [], '{}', now())""")
    client.command("""
        INSERT INTO guard_decisions (decision_id, trigger_id, customer_id, trigger, guard, outcome, decided_at, detail,
                                     emitted_at)
        VALUES ('g2', 't2', 'u2', 'cart_abandoned', 'holdout', 'held_out', '2024-05-06 08:00:00', '', now()),
               ('g4', 't4', 'u3', 'welcome', 'consent', 'suppressed', '2024-05-02 12:00:00', '', now())""")
    client.command("""
        INSERT INTO messages (message_id, trigger_id, customer_id, trigger, channel, template, locale, body, send_at,
                              deferred, service, recommendations, emitted_at)
        VALUES ('m1', 't1', 'u1', 'cart_abandoned', 'email', 'cart', 'en', 'hi', '2024-05-04 09:05:00', false, false,
                [], now()),
               ('m3', 't3', 'u0', 'cart_abandoned', 'push', 'cart', 'en', 'hi', '2024-05-03 10:00:00', false, false,
                [], now())""")
    yield client
    client.close()


def test_the_dashboard_has_its_panels_on_the_provisioned_datasource() -> None:
    all_panels = panels()
    assert len(all_panels) == 21
    assert [p["id"] for p in all_panels] == list(range(1, 22))
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    assert [d["uid"] for d in datasources["datasources"]] == [DATASOURCE_UID]
    assert "password" not in datasources["datasources"][0]["jsonData"], "the password belongs in secureJsonData"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "journey.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for panel in all_panels:
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID and target["rawSql"].strip(), panel["title"]


def test_the_dashboard_reads_only_views_and_tables_of_the_schema(client: Client) -> None:
    known = {name for (name,) in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
             .result_rows}
    for panel in panels():
        for target in panel["targets"]:
            for name in re.findall(r"\bFROM\s+([a-z_]+)", target["rawSql"], flags=re.IGNORECASE):
                assert name in known, f"panel {panel['title']!r} reads {name}, which sinks/schema.sql does not create"


#: What each panel must show for the rows inserted by the fixture (first row, first columns).
EXPECTED: dict[str, tuple[Any, ...]] = {
    "Events": (44,),  # 40 clickstream, 3 orders, 1 chat message
    "Visitors": (5,),
    "Buyers": (3,),
    "Orders": (3,),
    "Conversion": (0.6,),
    "Dead letters": (2,),
}
#: Panels whose whole result is known (order-free).
EXPECTED_ROWS: dict[str, set[tuple[Any, ...]]] = {
    "Customers by journey stage": {("browsing", 1), ("customer", 1)},  # u1's latest version is 'customer'
    "Dead letters by reason": {("malformed_json", "clickstream", 1), ("missing_id", "orders", 1)},
    # model, cold start, low, medium, high: u2's cold-start purchase score (0.5, 'high' by the cuts) is in no band
    "Customers per score band": {("churn", 0, 1, 0, 1), ("purchase_propensity", 1, 0, 1, 0)},
    # time series: the time column comes back as a naive UTC datetime
    "Model ROC AUC (prequential)": {(datetime(2024, 5, 2, 10), "churn", 0.7),
                                    (datetime(2024, 5, 3, 10), "churn", 0.75)},  # no NULL, in range
    "Triggers fired per hour by type": {(datetime(2024, 5, h[0], h[1]), t, 1) for h, t in
                                        (((4, 9), "cart_abandoned"), ((6, 8), "cart_abandoned"),
                                         ((3, 10), "cart_abandoned"), ((2, 12), "welcome"))},
    "Messages per hour by channel": {(datetime(2024, 5, 4, 9), "email", 1),
                                     (datetime(2024, 5, 3, 10), "push", 1)},
    # trigger, triggered, messaged, held_out, suppressed, messaged / held-out conversion, uplift
    "Triggers and messages per type: conversion and uplift vs holdout": {
        # ..., uplift, its standard error: sqrt(0.5 * 0.5 / 2 + 1.0 * 0.0 / 1)
        ("cart_abandoned", 3, 2, 1, 0, 0.5, 1.0, -0.5, math.sqrt(0.125)),
        ("welcome", 1, 0, 0, 1, None, None, None, None)},
}


@pytest.mark.parametrize("panel", panels(), ids=lambda p: f"{p['id']}-{p['title']}")
def test_every_panel_query_runs_and_shows_the_inserted_rows(client: Client, panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        sql = expand_macros(target["rawSql"], FROM, TO)
        try:
            result = client.query(sql)
        except Exception as exc:
            pytest.fail(f"panel {panel['title']!r}: ClickHouse refused its query:\n{sql}\n{exc}")
        rows = result.result_rows
        assert rows, f"panel {panel['title']!r} shows nothing for a week with data:\n{sql}"
        if target.get("queryType") == "timeseries" or target.get("format") == 0:
            assert result.column_names[0] == "time", f"panel {panel['title']!r}: a time series needs a time column"
            assert all(isinstance(row[0], datetime) for row in rows), panel["title"]
        expected = EXPECTED.get(panel["title"])
        if expected is not None:
            got = tuple(rows[0][: len(expected)])
            assert got == pytest.approx(expected) if all(isinstance(v, int | float) for v in expected) \
                else got == expected, f"panel {panel['title']!r}: {got} != {expected}"
        if panel["title"] in EXPECTED_ROWS:
            assert set(rows) == EXPECTED_ROWS[panel["title"]], panel["title"]


def test_time_filters_exclude_rows_outside_the_range(client: Client) -> None:
    """A week without data shows zero events: the time macros really filter."""
    events = next(p for p in panels() if p["title"] == "Events")["targets"][0]["rawSql"]
    empty = client.query(expand_macros(events, datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 8, tzinfo=UTC)))
    assert empty.result_rows[0][0] in (0, None)


def test_the_workers_dashboard_asks_only_for_metrics_the_workers_export() -> None:
    """Every metric in the Prometheus dashboard's queries is one a sink, features or trainer worker publishes."""
    from prometheus_client import generate_latest

    from processors.scoring.records import drift_record, metrics_record
    from sinks.ingest import SinkStats
    from streams.metrics import ModelMetrics, StatsCollector, WorkerMetrics, sink_collector

    models = ModelMetrics()  # what the trainer adds once it has published a metrics and a drift record
    models.observe("metrics", metrics_record("churn", 200, 200, 30, 0.7, 0.5, 0.2, 0))
    models.observe("drift", drift_record("churn", 150, 150, 0, {"detections": 1}))
    extra = {"sink": sink_collector(SinkStats()), "trainer": models, "features": StatsCollector(
        {"journey_invalid_input_skipped": ("", "processor", lambda: {"features": 0})})}
    exported: set[str] = set()
    for role, collector in extra.items():
        metrics = WorkerMetrics(role)
        metrics.events_out.labels("order_events").inc()
        metrics.insert_seconds.labels("order_events").observe(0.01)
        metrics.lag.labels("orders", "0").set(0)
        metrics.registry.register(collector)
        metrics.registry.register(StatsCollector({"journey_events_in": ("", "topic", lambda: {"orders": 1})}))
        text = generate_latest(metrics.registry).decode()
        exported |= set(re.findall(r"^(journey_[a-z_]+)", text, flags=re.MULTILINE))
        exported |= set(re.findall(r"^# TYPE (journey_[a-z_]+) counter", text, flags=re.MULTILINE))
    board = json.loads((GRAFANA / "dashboards" / "workers.json").read_text())
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    used = set()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == datasource["datasources"][0]["uid"], panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(journey_[a-z_]+)", target["expr"]))
    assert used and used <= exported, f"not exported by any worker: {sorted(used - exported)}"
    model_metrics = {f"journey_model_{name}" for name in ("roc_auc", "log_loss", "brier", "labels_total",
                                                          "drift_total")}
    assert model_metrics <= used, f"not on the dashboard: {sorted(model_metrics - used)}"
