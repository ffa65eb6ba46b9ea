"""The Taobao sample through broker, validation and sink: ClickHouse holds exactly what the CSV says.

The expected numbers come from pandas over the same CSV, independently of the replay's mapping code.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from streams.sources import open_source
from tests.conftest import Backend, produce, sink_until_caught_up

pytestmark = pytest.mark.integration

TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist", "buy": "order_placed"}
UNION = """
    SELECT customer_id, type, event_time FROM clickstream_events
    UNION ALL SELECT customer_id, type, event_time FROM order_events
"""


@pytest.fixture(scope="module")
def taobao_csv(datasets: Path) -> pd.DataFrame:
    frame = pd.read_csv(datasets / "taobao_userbehavior_sample.csv")
    frame["type"] = frame["behavior_type"].map(TYPES)
    frame["day"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    frame["customer_id"] = frame["user_id"].astype(str)
    return frame


def test_taobao_counts_per_type_day_and_customer_match_the_csv(
        backend: Backend, datasets: Path, taobao_csv: pd.DataFrame) -> None:
    records, _ = open_source(f"taobao:{datasets / 'taobao_userbehavior_sample.csv'}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
    client = backend.client()
    stats = sink_until_caught_up(backend, client, producer.end_offsets)
    assert not stats.dead_letters, f"the Taobao sample is valid input: {stats.dead_letters}"

    per_type = dict(client.query(f"SELECT type, count() FROM ({UNION}) GROUP BY type").result_rows)
    assert per_type == taobao_csv["type"].value_counts().to_dict()

    per_day = {(str(day), t): n for day, t, n in client.query(
        f"SELECT toDate(event_time) AS day, type, count() FROM ({UNION}) GROUP BY day, type").result_rows}
    assert per_day == taobao_csv.groupby(["day", "type"]).size().to_dict()

    rolled = {(str(day), t): n for day, t, n in client.query(
        "SELECT toDate(minute) AS day, type, sum(events) FROM events_per_minute GROUP BY day, type").result_rows}
    assert rolled == per_day, "the per-minute rollup agrees with the raw tables"

    sample = taobao_csv["customer_id"].drop_duplicates().sample(60, random_state=11).tolist()
    per_customer = {(c, t): n for c, t, n in client.query(
        f"SELECT customer_id, type, count() FROM ({UNION}) WHERE customer_id IN %(ids)s GROUP BY customer_id, type",
        parameters={"ids": sample}).result_rows}
    expected = taobao_csv[taobao_csv["customer_id"].isin(sample)].groupby(["customer_id", "type"]).size().to_dict()
    assert per_customer == expected

    orders = client.query("SELECT sum(orders_placed), sum(orders_priced) FROM orders_per_minute").result_rows[0]
    assert orders == (int((taobao_csv["type"] == "order_placed").sum()), 0), "Taobao orders carry no price"
