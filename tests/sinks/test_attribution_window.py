"""The attribution window is the setting ``attribution_window_hours``, written into the views with the schema.

One messaged and one held-out trigger, and orders placed 1, 5, 30 and 47 hours after them (and one
before): each window length attributes exactly the orders inside it, in both arms, and the
conversion views follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from sinks.client import apply_schema, connect, schema_statements
from streams.settings import Settings
from tests.conftest import reset_clickhouse

FIRED = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
#: Hours after fired_at of each customer's orders, with their amounts.
ORDERS = {"c1": [(-1, 7.0), (1, 10.0), (5, 20.0), (30, 40.0)], "c2": [(1, 1.0), (47, 2.0)]}


@pytest.fixture
def client(chdb_path: Path) -> Iterator[Client]:
    client = connect(f"chdb://{chdb_path}")
    reset_clickhouse(client)
    triggers = [("t1", "c1", "cart_abandoned", FIRED), ("t2", "c2", "cart_abandoned", FIRED)]
    client.insert("triggers", triggers, column_names=["trigger_id", "customer_id", "trigger", "fired_at"])
    client.insert("guard_decisions", [("d1", "t2", "c2", "cart_abandoned", "holdout", "held_out", FIRED)],
                  column_names=["decision_id", "trigger_id", "customer_id", "trigger", "guard", "outcome",
                                "decided_at"])
    client.insert("messages", [("m1", "t1", "c1", "cart_abandoned", "email", FIRED)],
                  column_names=["message_id", "trigger_id", "customer_id", "trigger", "channel", "send_at"])
    orders = [(f"o-{customer}-{n}", customer, FIRED + timedelta(hours=hours), "order_placed", amount)
              for customer, placed in ORDERS.items() for n, (hours, amount) in enumerate(placed)]
    client.insert("order_events", orders, column_names=["event_id", "customer_id", "event_time", "type", "amount"])
    yield client
    reset_clickhouse(client)


def attributed(client: Client) -> list[tuple[object, ...]]:
    return [tuple(r) for r in client.query("SELECT trigger_id, arm, orders_in_window, revenue_in_window, converted "
                                           "FROM trigger_attribution ORDER BY trigger_id").result_rows]


def test_the_default_window_is_24_hours(client: Client) -> None:
    assert Settings().attribution_window_hours == 24
    assert attributed(client) == [("t1", "messaged", 2, 30.0, True), ("t2", "held_out", 1, 1.0, True)]


@pytest.mark.parametrize(("hours", "expected"), [
    (1, [("t1", "messaged", 0, 0.0, False), ("t2", "held_out", 0, 0.0, False)]),  # the window ends before 1 h
    (6, [("t1", "messaged", 2, 30.0, True), ("t2", "held_out", 1, 1.0, True)]),
    (48, [("t1", "messaged", 3, 70.0, True), ("t2", "held_out", 2, 3.0, True)]),
])
def test_another_window_attributes_exactly_the_orders_inside_it(client: Client, hours: int,
                                                               expected: list[tuple[object, ...]]) -> None:
    apply_schema(client, attribution_window_hours=hours)
    assert attributed(client) == expected
    (conversion,) = client.query("SELECT triggered, messaged_converted, held_out_converted, revenue_in_window "
                                 "FROM trigger_conversion_daily").result_rows
    assert tuple(conversion) == (2, int(expected[0][4]), int(expected[1][4]), expected[0][3] + expected[1][3])
    apply_schema(client)  # back to the default: the view is replaced again
    assert attributed(client) == [("t1", "messaged", 2, 30.0, True), ("t2", "held_out", 1, 1.0, True)]


def test_the_window_must_be_a_positive_whole_number_of_hours() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        schema_statements(0)
    with pytest.raises(ValueError):
        schema_statements("24 HOUR) OR (1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Settings(attribution_window_hours=0)
    assert any("INTERVAL 72 HOUR" in s for s in schema_statements(72))
