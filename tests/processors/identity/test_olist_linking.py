"""Real data: Olist orders known only by their per-order customer id, linked through the person's id.

Olist gives each order its own ``customer_id``; ``customer_unique_id`` is the person. Replayed with
``per_order_ids`` (streams/sources/olist.py), every order event names its per-order id as ``anonymous_id``
and the person's id as ``loyalty_id`` (an auto-linking kind): the identity graph must join each person's
orders into one profile, and the features processor, folding the merged profiles, must count per person
exactly the orders pandas counts per ``customer_unique_id`` in the raw CSV files. (Through the real
broker and workers: tests/integration/test_olist_identity.py.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pandas as pd

from processors.features.build import build_features
from processors.features.engine import CustomerState
from processors.identity.graph import IdentityGraph
from schemas.identity import PROFILE_HANDOFFS, identified
from schemas.registry import IDENTITY_MERGES
from schemas.validation import Limits, validate
from streams.identity import record_value, resolved_value, sighting_of
from streams.sources.olist import olist


def test_olist_orders_linked_through_the_person_count_as_pandas_counts_per_person(datasets: Path) -> None:
    directory = datasets / "olist"
    orders = pd.read_csv(directory / "olist_orders_dataset.csv")
    people = pd.read_csv(directory / "olist_customers_dataset.csv")
    order_customer = dict(zip(orders["order_id"], orders["customer_id"], strict=True))
    placed = orders[orders["order_purchase_timestamp"].notna()].merge(people, on="customer_id")
    expected = placed.groupby("customer_unique_id")["order_id"].nunique().to_dict()

    records = olist(directory, per_order_ids=True)
    graph, processor = IdentityGraph(), build_features()
    states: dict[str, CustomerState] = {}
    limits = Limits()
    merges = Counter()

    def feed(topic: str, key: str, value: bytes) -> None:
        state = states.setdefault(key, processor.new_state(key))
        for out_topic, out_key, out_value in processor.process(state, topic, value, key.encode()):
            if out_topic in (PROFILE_HANDOFFS, identified("orders")):
                feed(out_topic, out_key.decode(), out_value)  # type: ignore[union-attr]

    person_of_order: dict[str, str] = {}
    for record in records:
        if record.topic != "orders":
            continue
        body = orjson.loads(record.value)
        person = body["loyalty_id"]
        assert body["anonymous_id"] == body["customer_id"] == order_customer[body["order_id"]]
        event = validate("orders", record.value, record.key, limits)
        res = graph.resolve(sighting_of(event, round(event.event_time.timestamp() * 1000)))
        for merge in res.records:
            merges[merge.action] += 1
            feed(IDENTITY_MERGES, merge.from_id, record_value(merge))
        value = resolved_value(orjson.dumps(body), event.customer_id, event.resolved_from, res.profile)  # as the stage
        feed(identified("orders"), res.profile, value)
        person_of_order[body["order_id"]] = person

    assert merges["refused"] == 0
    live = {key: state for key, state in states.items() if state.identity is None
            or state.identity.get("merged_into") is None}
    counted: dict[str, int] = {}
    for order_id, person in person_of_order.items():
        profile = graph.profile_of("anonymous_id", order_customer[order_id])
        assert profile is not None
        counted[person] = processor.engine.values(live[profile])["orders_total"]
    assert counted == expected
    repeat = {p: n for p, n in expected.items() if n > 1}
    assert len(repeat) == 73  # the dataset's repeat buyers: their later orders were merged in
    assert merges["merged"] == sum(n - 1 for n in repeat.values())
    assert len({graph.profile_of("loyalty_id", p) for p in expected}) == len(expected)
