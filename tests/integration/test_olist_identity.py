"""Real data through the real pipeline: Olist orders known only by per-order ids, linked into people.

The Olist replay with ``per_order_ids`` (streams/sources/olist.py) names each order's events by Olist's
per-order ``customer_id`` as ``anonymous_id`` and the person (``customer_unique_id``) as ``loyalty_id``.
Produced to the embedded broker and consumed by the real identity stage, features worker and sink, the
live profiles in ClickHouse (``customer_profiles FINAL``, not the ones merged into another) must count per
person exactly the orders pandas counts per ``customer_unique_id`` in the CSV files, with the default
allowed lateness (1 h) and with one as wide as the data; it would not with linking off (every later order a
person of its own). With the default lateness it did not before issue 22's fix: the events the identity
stage re-keys onto a person's profile reach it out of event-time order (the stage reads the 16 input
partitions of a backlog in the broker's interleaving), days behind its newest event, and were sent to
late-events; now each is checked against its own origin's stream (``resolved_from``), which is in order.

To keep the test near two minutes, it replays a deterministic subset: every order of the first
``PEOPLE`` persons in sorted ``customer_unique_id`` order (so every order of each repeat buyer among them),
written as a filtered copy of the CSVs to the test's temp dir.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import orjson
import pandas as pd
import pytest

from sinks.access import open_reader
from streams.sources.olist import olist
from streams.sources.stats import ReplayStats
from tests.conftest import Backend, produce
from tests.integration.identity_workers import identity_env, settle, start_workers, wait_live

pytestmark = pytest.mark.integration

PEOPLE = 3000
#: Repeat buyers among them (the whole dataset has 73): each links two or more per-order ids.
REPEAT_BUYERS = 28
BY_ORDER = ("olist_order_items_dataset.csv", "olist_order_payments_dataset.csv", "olist_order_reviews_dataset.csv")
AS_IS = ("olist_products_dataset.csv", "product_category_name_translation.csv")


def _copy_rows(source: Path, target: Path, column: str, keep: set[str]) -> None:
    """``source`` to ``target`` with only the rows whose ``column`` is in ``keep``, each field as written."""
    with source.open(newline="", encoding="utf-8") as inp, target.open("w", newline="", encoding="utf-8") as out:
        reader = csv.DictReader(inp)
        writer = csv.DictWriter(out, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        writer.writerows(row for row in reader if row[column] in keep)


def _subset(olist_dir: Path, people: set[str], target: Path) -> None:
    """The Olist CSVs restricted to ``people``'s orders (their items, payments and reviews)."""
    target.mkdir()
    customers = pd.read_csv(olist_dir / "olist_customers_dataset.csv", dtype=str)
    order_customers = set(customers.loc[customers["customer_unique_id"].isin(people), "customer_id"])
    _copy_rows(olist_dir / "olist_customers_dataset.csv", target / "olist_customers_dataset.csv", "customer_id",
               order_customers)
    orders = pd.read_csv(olist_dir / "olist_orders_dataset.csv", dtype=str)
    order_ids = set(orders.loc[orders["customer_id"].isin(order_customers), "order_id"])
    _copy_rows(olist_dir / "olist_orders_dataset.csv", target / "olist_orders_dataset.csv", "order_id", order_ids)
    for name in BY_ORDER:
        _copy_rows(olist_dir / name, target / name, "order_id", order_ids)
    for name in AS_IS:
        shutil.copyfile(olist_dir / name, target / name)


LATENESS = [pytest.param({}, id="default-lateness"),
            pytest.param({"JOURNEY_ALLOWED_LATENESS_SECONDS": str(10 * 365 * 86400)}, id="lateness-of-the-data")]


@pytest.mark.parametrize("settings", LATENESS)
def test_olist_orders_linked_by_the_identity_stage_count_per_person_as_pandas(
        datasets: Path, backend: Backend, tmp_path: Path, settings: dict[str, str]) -> None:
    olist_dir = datasets / "olist"
    orders = pd.read_csv(olist_dir / "olist_orders_dataset.csv")
    customers = pd.read_csv(olist_dir / "olist_customers_dataset.csv")
    people = set(sorted(customers["customer_unique_id"].unique())[:PEOPLE])
    placed = orders[orders["order_purchase_timestamp"].notna()].merge(customers, on="customer_id")
    expected = placed[placed["customer_unique_id"].isin(people)].groupby("customer_unique_id")["order_id"].nunique()
    assert len(expected) == PEOPLE and (expected > 1).sum() == REPEAT_BUYERS
    later_orders = int((expected - 1).sum())
    person_of = dict(zip(customers["customer_id"], customers["customer_unique_id"], strict=True))

    _subset(olist_dir, people, tmp_path / "olist")
    stats = ReplayStats()
    records = olist(tmp_path / "olist", stats, per_order_ids=True)
    assert stats.emitted["order_placed"] == expected.sum() and not stats.skipped.keys() - {"review_without_text"}

    env, dsn = identity_env(backend, tmp_path, "olist")
    workers = start_workers({**env, **settings}, tmp_path)
    try:
        wait_live(workers)
        produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
        settle(backend.kafka, "olist", workers, timeout=900)
        with open_reader(dsn, tmp_path, direct=False) as reader:  # embedded: through the sink that owns it
            live = reader.rows("SELECT customer_id, features FROM customer_profiles FINAL WHERE merged_into IS NULL")[1]
            retired = reader.rows("SELECT customer_id, merged_into FROM customer_profiles FINAL "
                                  "WHERE merged_into IS NOT NULL")[1]
            decisions = reader.rows("SELECT action, from_kind, count() FROM identity_merges FINAL GROUP BY ALL "
                                    "ORDER BY ALL")[1]
    finally:
        codes = {role: worker.stop() for role, worker in workers.items()}
    assert set(codes.values()) == {0}, {r: workers[r].log_tail() for r, c in codes.items() if c}

    counted: dict[str, int] = {}
    for profile, features in live:
        person = person_of.get(profile)
        assert person is not None, f"live profile {profile!r} is no Olist per-order id"
        assert person not in counted, f"{person} has two live profiles"
        counted[person] = orjson.loads(features)["orders_total"]
    assert counted == expected.to_dict()
    # Each person's first per-order id takes the loyalty id; each later order's id, at its first event, is
    # linked and retired into the person's (a `merged` record). A later event naming a retired id goes
    # through that id's profile (graph.Resolution.via), which forwards it: such a profile exists, retired,
    # only for orders whose later events reached it (how many depends on arrival order), and each one
    # points at its person's one live profile.
    assert [tuple(r) for r in decisions] == [("linked", "anonymous_id", later_orders), ("linked", "loyalty_id", PEOPLE),
                                             ("merged", "anonymous_id", later_orders)]
    live_of = {person_of[profile]: profile for profile, _ in live}
    assert len(retired) <= later_orders
    for profile, into in retired:
        assert profile in person_of and into == live_of[person_of[profile]], (profile, into)
