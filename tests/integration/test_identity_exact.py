"""Identity resolution is exact: the generator's traffic with anonymous visits that log in, shared devices and
customers with two e-mails, replayed through the real workers (sink, identity stage, features) with the identity
stage SIGKILLed twice mid-replay, gives each true customer the profile a pandas computation over the same events
gives, keyed by the customer the generator knows each anonymous visit belongs to.

Compared: the features that merge exactly (processors/features/merge.py; README, Identity resolution): the event
count, lifetime counts per clickstream type, first and last seen, active days, orders (count, revenue, first and
last, cancellations, refunds, deliveries) and the acquisition touch. Windowed counts depend on each profile's
as-of time and are left to the unit tests of the merge. The reference reads the generated events only.

The stage is killed just after it starts reading the first third (it restarts with no stored graph and reads
everything again, in its own order, while what the killed one sent is already downstream), and again in the
second third once it has stored its graph and committed the first (it restarts from the stored graph). The
profiles are read from the features output (the newest record per customer) and ClickHouse's
``customer_profiles FINAL``; the links and merges from ``identity_merges FINAL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from schemas.identity import IDENTIFIED_TOPICS, PROFILE_HANDOFFS
from schemas.registry import IDENTITY_MERGES, INPUT_TOPICS
from sinks.access import open_reader
from streams.progress import GroupProgress
from streams.sources.generator import Generator, IdentityMix
from tests.conftest import Backend, produce
from tests.integration.procs import Samples, WorkerProcess, caught_up, scrape, status, wait_for
from tests.integration.test_scoring_pipeline import read_all

pytestmark = pytest.mark.integration

MIX = IdentityMix(anonymous=90, shared_devices=20, two_emails=40)
COUNTED = {"page_view": "page_views", "product_view": "product_views", "search": "searches",
           "add_to_cart": "cart_adds", "remove_from_cart": "cart_removes", "add_to_wishlist": "wishlist_adds",
           "checkout_started": "checkouts"}
DAY_MS = 86_400_000


def reference(bodies: list[dict[str, Any]], topics: list[str], anonymous: dict[str, str]) -> pd.DataFrame:
    """Per true customer, the exactly merged features computed with pandas from the generated events."""
    events = pd.DataFrame(bodies)
    events["topic"] = topics
    events = events[events["type"] != "identify"].copy()  # links: the identity stage keeps them
    events["who"] = events["customer_id"].where(events["customer_id"].notna(), events["anonymous_id"].map(anonymous))
    assert events["who"].notna().all()
    since_epoch = pd.to_datetime(events["event_time"], utc=True, format="ISO8601") - pd.Timestamp(0, tz="UTC")
    events["ms"] = (since_epoch // pd.Timedelta(1, "ms")).astype("int64")
    by = events.groupby("who")
    out = pd.DataFrame({"events_total": by.size(), "first_seen_ms": by["ms"].min(), "last_seen_ms": by["ms"].max(),
                        "active_days": by["ms"].agg(lambda ms: (ms // DAY_MS).nunique())})
    clicks = events[events["topic"] == "clickstream"]
    for kind, name in COUNTED.items():
        out[f"{name}_total"] = clicks[clicks["type"] == kind].groupby("who").size()
    placed = events[events["type"] == "order_placed"].copy()
    placed["cents"] = (placed["amount"] * 100).round().astype("int64")
    out["orders_total"] = placed.groupby("who").size()
    out["revenue_total"] = placed.groupby("who")["cents"].sum() / 100
    out["first_order_ms"] = placed.groupby("who")["ms"].min()
    out["last_order_ms"] = placed.groupby("who")["ms"].max()
    for kind, name in (("order_cancelled", "orders_cancelled"), ("order_refunded", "orders_refunded"),
                       ("order_delivered", "orders_delivered")):
        out[name] = events[events["type"] == kind].groupby("who").size()
    refunds = events[events["type"] == "order_refunded"].copy()
    refunds["cents"] = (refunds["amount"] * 100).round().astype("int64")
    out["refunded_total"] = refunds.groupby("who")["cents"].sum() / 100
    out["last_delivered_ms"] = events[events["type"] == "order_delivered"].groupby("who")["ms"].max()
    counts = [c for c in out.columns if c.endswith(("_total", "orders_cancelled", "orders_refunded",
                                                   "orders_delivered")) and c != "revenue_total"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out[["revenue_total", "refunded_total"]] = out[["revenue_total", "refunded_total"]].fillna(0.0)
    touches = events[(events["topic"] == "clickstream") | (events["type"] == "order_placed")]
    first = touches.sort_values(["ms", "event_id"]).drop_duplicates("who").set_index("who")
    out["acquisition_channel"] = first["channel"]
    out["acquisition_source"] = first["utm_source"]
    return out.astype(object).where(out.notna(), None)


def consumed(worker: WorkerProcess) -> float:
    """Records the worker has consumed so far (0 while its metrics endpoint is not up)."""
    try:
        samples: Samples = scrape(worker.url)
    except OSError:
        return 0.0
    return sum(v for (name, _), v in samples.items() if name == "journey_events_in_total")


def test_anonymous_visits_shared_devices_and_two_emails_resolve_exactly_with_the_stage_killed(
        backend: Backend, tmp_path: Path) -> None:
    generator = Generator(customers=300, days=4, seed=22, identities=MIX)
    records = generator.records()
    truth = generator.truth
    bodies = [orjson.loads(r.value) for r in records]
    expected = reference(bodies, [r.topic for r in records], truth.anonymous)
    assert len(expected) == 300

    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "anon", "JOURNEY_SINK_BATCH_SECONDS": "0.2",
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2"}  # the default allowed lateness: nothing may be late
    stage_env = {**env, "JOURNEY_PROCESSOR_FLUSH_SECONDS": "2"}  # a kill just after a read finds it uncommitted
    workers = {"sink": WorkerProcess("sink", env, tmp_path / "sink.log"),
               "identity-stage": WorkerProcess("identity-stage", stage_env, tmp_path / "identity-stage-0.log"),
               "features": WorkerProcess("features", env, tmp_path / "features.log")}
    features_topics = [*sorted(IDENTIFIED_TOPICS), IDENTITY_MERGES, PROFILE_HANDOFFS]
    chunks = [records[: len(records) // 3], records[len(records) // 3: 2 * len(records) // 3],
              records[2 * len(records) // 3:]]
    redone: list[int] = []  # records the killed stage had read but not committed (read again after restart)
    try:
        wait_for(lambda: all(status(f"{w.url}/healthz") == 200 for w in workers.values()), "live workers", 180,
                 list(workers.values()))
        for n, chunk in enumerate(chunks):
            stage = workers["identity-stage"]
            if n > 0:  # the restarted stage has read again and committed what came before (its graph is stored)
                caught_up(backend.kafka, "anon-identity", list(INPUT_TOPICS), list(workers.values()), 300)
            before = consumed(stage)
            producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in chunk])
            if n == len(chunks) - 1:
                break
            wait_for(lambda s=stage, b=before: consumed(s) > b, "the identity stage reading", 180,
                     list(workers.values()))
            stage.kill()  # between two flushes (2 s apart): what it read of the chunk is not committed
            progress = GroupProgress(backend.kafka, "anon-identity")
            try:
                redone.append(progress.remaining(producer.end_offsets))
            finally:
                progress.close()
            workers["identity-stage"] = WorkerProcess("identity-stage", stage_env,
                                                      tmp_path / f"identity-stage-{n + 1}.log")
        watched = list(workers.values())
        caught_up(backend.kafka, "anon-identity", list(INPUT_TOPICS), watched, 300)
        for _ in range(3):  # the features worker feeds two of its own inputs (handoffs, forwarded events)
            caught_up(backend.kafka, "anon-features", features_topics, watched, 300)
        caught_up(backend.kafka, "anon-sink", ["customer-features", IDENTITY_MERGES], watched, 300)
        with open_reader(dsn, tmp_path, direct=False) as reader:  # embedded: through the sink that owns it
            stored = reader.rows("SELECT customer_id, merged_into FROM customer_profiles FINAL")[1]
            merges = reader.rows("SELECT action, reason, from_kind, from_id, into_id FROM identity_merges FINAL")[1]
    finally:
        codes = {role: worker.stop() for role, worker in workers.items()}
    assert set(codes.values()) == {0}, {r: workers[r].log_tail() for r, c in codes.items() if c}
    print(f"records {len(records)}; read but uncommitted when each stage was killed: {redone}")

    latest: dict[str, dict[str, Any]] = {}
    for profile in read_all(backend.kafka, "customer-features", backend.partitions):
        latest[profile["customer_id"]] = profile  # one customer's records are in order (one partition)
    live = {c: p for c, p in latest.items() if p.get("merged_into") is None}
    assert sorted(live) == sorted(expected.index), \
        f"one live profile per true customer, none anonymous: {set(live) ^ set(expected.index)}"
    mismatches = []
    for customer, row in expected.iterrows():
        profile = live[customer]
        got = {**profile["features"], "events_total": profile["events_total"]}
        for name, want in row.items():
            if got.get(name) != want:
                mismatches.append((customer, name, got.get(name), want))
    assert not mismatches, f"{len(mismatches)} differences from pandas, first: {mismatches[:8]}"
    assert all(p["features"]["late_events"] == 0 for p in live.values())

    retired = {c: p["merged_into"] for c, p in latest.items() if p.get("merged_into") is not None}
    assert retired.items() <= truth.anonymous.items(), "only anonymous profiles retire, into their own customer"
    stored_merged = {c: m for c, m in stored if m is not None}
    assert stored_merged == retired and sorted(c for c, m in stored if m is None) == sorted(expected.index)

    linked = {(k, f): i for a, _, k, f, i in merges if a == "linked"}
    assert {f: i for (k, f), i in linked.items() if k == "anonymous_id"} == truth.anonymous
    assert {f: i for (k, f), i in linked.items() if k == "email_hash"} == \
        {e: c for c, es in truth.emails.items() for e in es}, "every address, both of two, linked to its customer"
    merged = {(k, f, i) for a, _, k, f, i in merges if a == "merged"}
    assert merged == {("anonymous_id", a, c) for a, c in truth.anonymous.items()}  # every visitor id retires
    # A profile record is retired where the features worker had counted some of the visitor's events when the
    # merge reached it; else the events went on to the customer and the visitor never had a profile record.
    assert {("anonymous_id", a, c) for a, c in retired.items()} <= merged and retired
    assert not [m for m in merges if m[0] == "refused" or m[2] == "device_id"]
    shared = {}
    for customer, device in truth.devices.items():
        shared.setdefault(device, []).append(customer)
    pairs = [cs for cs in shared.values() if len(cs) == 2]
    assert len(pairs) == MIX.shared_devices and all(c in live for cs in pairs for c in cs), \
        "customers sharing a device stay two live profiles"
