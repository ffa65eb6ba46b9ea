"""A database made with an older rollup definition is converted at start and refilled from its raw tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: In a subprocess (chDB: one data path per process): an old first-touch rollup with rows, then apply_schema.
SCRIPT = """
import sys
from sinks.client import apply_schema, connect
client = connect(f"chdb://{sys.argv[1]}")
client.command("CREATE TABLE clickstream_events (event_id String, customer_id String, "
               "event_time DateTime64(3, 'UTC'), type LowCardinality(String), session_id Nullable(String), "
               "channel LowCardinality(String), device LowCardinality(Nullable(String)), page_url Nullable(String), "
               "referrer Nullable(String), utm_source Nullable(String), utm_medium Nullable(String), "
               "utm_campaign Nullable(String), product_id Nullable(String), category_id Nullable(String), "
               "brand Nullable(String), price Nullable(Float64), currency LowCardinality(Nullable(String)), "
               "quantity Nullable(UInt32), query Nullable(String), results Nullable(UInt32), "
               "cart_value Nullable(Float64), items Nullable(UInt32), schema_version UInt8, "
               "source_partition UInt16, source_offset UInt64, ingested_at DateTime64(3, 'UTC')) "
               "ENGINE = MergeTree ORDER BY (customer_id, event_time, event_id)")
client.command("CREATE TABLE customer_value_state (customer_id String, currency LowCardinality(String), "
               "first_touch AggregateFunction(argMin, Tuple(Nullable(String), Nullable(String)), "
               "Tuple(DateTime64(3, 'UTC'), String)), orders SimpleAggregateFunction(sum, UInt64), "
               "revenue SimpleAggregateFunction(sum, Float64)) ENGINE = AggregatingMergeTree "
               "ORDER BY (customer_id, currency)")
client.command("CREATE MATERIALIZED VIEW customer_value_clickstream_mv TO customer_value_state AS "
               "SELECT customer_id, '' AS currency, argMinState((CAST(channel, 'Nullable(String)'), utm_source), "
               "(event_time, event_id)) AS first_touch FROM clickstream_events GROUP BY customer_id")
ROWS = [("e1", "a", 5, "app", None), ("e2", "a", 1, "web", "google"), ("e3", "b", 3, "mobile_web", "facebook"),
        ("e4", "b", 3, "web", None)]
for event_id, customer, minute, channel, source in ROWS:
    client.command(f"INSERT INTO clickstream_events (event_id, customer_id, event_time, type, channel, utm_source, "
                   f"schema_version, source_partition, source_offset, ingested_at) VALUES ('{event_id}', "
                   f"'{customer}', toDateTime64('2024-01-01 00:0{minute}:00', 3, 'UTC'), 'page_view', '{channel}', "
                   f"{'NULL' if source is None else repr(source)}, 1, 0, 0, now64(3))")
apply_schema(client)
print(client.query("SELECT type FROM system.columns WHERE table = 'customer_value_state' "
                   "AND name = 'first_touch'").result_rows[0][0])
for row in client.query("SELECT customer_id, acquisition_channel, acquisition_source FROM customer_value "
                        "ORDER BY customer_id").result_rows:
    print(*row, sep="|")
apply_schema(client)  # a second start changes nothing
print(client.command("SELECT count() FROM customer_value_state"))
"""


def test_an_argmin_first_touch_rollup_is_replaced_and_refilled_from_the_raw_rows(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "db")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("SimpleAggregateFunction(min, Tuple(DateTime64(3, 'UTC'), String")
    # a: the web visit from google at minute 1 came first; b: two at minute 3, the lower event id (e3) wins.
    assert lines[1:3] == ["a|web|google", "b|mobile_web|facebook"]
    assert lines[3] == "2"


#: An old profile history (sorted by customer and events_total only) with a stage timer's version.
PROFILES_SCRIPT = """
import sys
from sinks.client import apply_schema, connect
client = connect(f"chdb://{sys.argv[1]}")
COLUMNS = ("customer_id String, as_of DateTime64(3, 'UTC'), events_total UInt64, stage LowCardinality(String), "
           "stage_since Nullable(DateTime64(3, 'UTC')), segments Array(LowCardinality(String)), "
           "last_seen Nullable(DateTime64(3, 'UTC')), orders_total UInt32, revenue_total Float64, "
           "cart_value Float64, features String, emitted_at DateTime64(3, 'UTC')")
client.command(f"CREATE TABLE customer_profile_history ({COLUMNS}) ENGINE = ReplacingMergeTree "
               "PARTITION BY toYYYYMM(as_of) ORDER BY (customer_id, events_total)")
client.command("CREATE TABLE customer_profiles AS customer_profile_history ENGINE = ReplacingMergeTree(events_total) "
               "PARTITION BY tuple() ORDER BY customer_id")
client.command("CREATE MATERIALIZED VIEW customer_profiles_mv TO customer_profiles AS "
               "SELECT * FROM customer_profile_history")
for customer, as_of, events, stage in (("a", "2024-01-01", 5, "repeat_buyer"), ("b", "2024-01-02", 2, "browser")):
    client.command(f"INSERT INTO customer_profile_history (customer_id, as_of, events_total, stage, orders_total, "
                   f"revenue_total, cart_value, features, emitted_at) VALUES ('{customer}', '{as_of}', {events}, "
                   f"'{stage}', 0, 0, 0, '{{}}', now64(3))")
apply_schema(client)
# A stage timer moves a's profile on without a new event: same events_total, later as_of.
client.command("INSERT INTO customer_profile_history (customer_id, as_of, events_total, stage, orders_total, "
               "revenue_total, cart_value, features, emitted_at) VALUES ('a', '2024-03-01', 5, 'at_risk', 0, 0, 0, "
               "'{}', now64(3))")
# ...and the version before it is stored again (a redelivery), after it.
client.command("INSERT INTO customer_profile_history (customer_id, as_of, events_total, stage, orders_total, "
               "revenue_total, cart_value, features, emitted_at) VALUES ('a', '2024-01-01', 5, 'repeat_buyer', 0, 0, "
               "0, '{}', now64(3))")
client.command("OPTIMIZE TABLE customer_profile_history FINAL")
client.command("OPTIMIZE TABLE customer_profiles FINAL")
apply_schema(client)  # a second start changes nothing
print(client.command("SELECT count() FROM customer_profile_history"))
for row in client.query("SELECT customer_id, toString(as_of), stage FROM customer_profiles FINAL "
                        "ORDER BY customer_id").result_rows:
    print(*row, sep="|")
print(client.command("SELECT count() FROM system.tables WHERE name LIKE '%before_profile_version%'"))
"""


def test_an_old_profile_history_is_rebuilt_and_a_timers_version_is_the_latest(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PROFILES_SCRIPT, str(tmp_path / "db")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "3", "the timer's version is kept beside the one before it; the redelivery collapses"
    assert lines[1:3] == ["a|2024-03-01 00:00:00.000|at_risk", "b|2024-01-02 00:00:00.000|browser"]
    assert lines[3] == "0", "nothing is left set aside"
