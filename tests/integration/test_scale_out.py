"""Scale-out: two workers of a group share the partitions; one is SIGKILLed in the middle of a replay;
the others take its partitions over; ClickHouse ends with exactly the result of a single worker.

- Features alone, on the whole Taobao sample: the counts and every profile equal the input's
  (the numbers a single worker gives: tests/integration/test_features_exact.py).
- The whole pipeline on a Taobao slice: two workers of each of features, scoring, triggers, messages
  and deliver, one of each killed; counts, profiles, scored customers, triggers, guard decisions,
  messages and deliveries equal a single-worker reference (what cannot be equal, and why, is in that
  test's docstring).

Which sinks run depends on the ClickHouse: on a server (containers), two `journey sink` processes
share the partitions and one is killed. On the embedded chDB, one: chDB lets one process open a
database path, so two sinks cannot write to one embedded database, and two databases would not be
one result. The sink's own crash and restart is covered by test_redelivery.py's SIGKILL test on
both backends.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from plumbing.partitioner import partition_for
from processors.messages.processor import MessagesProcessor
from processors.triggers.processor import TriggersProcessor
from sinks.access import Reader, open_reader
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.sources import open_source
from streams.sources.record import SourceRecord
from streams.stateful import StatefulWorker
from streams.topics import ensure_compacted
from tests.conftest import Backend, produce
from tests.integration.procs import WorkerProcess, caught_up, group_of, topics_of, topics_read, value, wait_for
from tests.integration.test_scoring_pipeline import read_all
from tests.integration.test_triggers_pipeline import records_of
from tests.processors.features.compare import differences, flat
from tests.processors.features.reference import taobao_features
from tests.processors.messages.helpers import pipeline

pytestmark = pytest.mark.integration

TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist", "buy": "order_placed"}
#: Topics each group reads (the inputs, plus every output table's topic for the sink, privacy-requests for features).
SINK_TOPICS, FEATURES_TOPICS = topics_read("sink"), topics_read("features")


def assigned(worker: WorkerProcess) -> float:
    return value(worker.metrics(), "journey_assigned_partitions")


def scale_env(backend: Backend, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The ClickHouse DSN (embedded: a path of the test's own) and the workers' settings."""
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    return dsn, {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
                 "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "scale",
                 "JOURNEY_IDENTITY_RESOLUTION": "false",  # features read the raw inputs (no identity stage here)
                 "JOURNEY_SINK_BATCH_ROWS": "5000", "JOURNEY_SINK_BATCH_SECONDS": "0.3",
                 "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.3"}


def wait_shared(groups: dict[str, list[WorkerProcess]], partitions: int, everyone: list[WorkerProcess]) -> None:
    """Every member of every group owns some partitions, and together all of them."""
    for role, group in groups.items():
        wait_for(lambda g=group, r=role: all(w.ready() and assigned(w) > 0 for w in g)
                 and sum(assigned(w) for w in g) == topics_read(r) * partitions,
                 f"the {role} partitions shared", 90, everyone)


def feed_in_halves(kafka: dict[str, str], records: list[Any], killed: threading.Event, done: threading.Event,
                   errors: list[BaseException], ends: dict[tuple[str, int], int]) -> None:
    """The replay: its first half, then (once the victims are dead) the second; fills ``ends``."""
    from plumbing.produce import TrackingProducer

    try:
        producer = TrackingProducer(kafka)
        half = len(records) // 2
        for part in (records[:half], records[half:]):
            for r in part:
                producer.send_raw(r.topic, r.key, r.value)
            producer.flush()
            if not killed.wait(180):
                raise TimeoutError("the victims were never killed")
        ends.update(producer.end_offsets)
    except BaseException as exc:
        errors.append(exc)
    finally:
        done.set()


def test_two_workers_per_group_one_sigkilled_mid_replay_give_the_exact_result(
        backend: Backend, datasets: Path, tmp_path: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    records = list(records)
    dsn, env = scale_env(backend, tmp_path)
    sinks_n = 1 if backend.name == "embedded" else 2
    sinks = [WorkerProcess("sink", env, tmp_path / f"sink-{i}.log", f"sink-{i}") for i in range(sinks_n)]
    features = [WorkerProcess("features", env, tmp_path / f"features-{i}.log", f"features-{i}") for i in range(2)]
    everyone = [*sinks, *features]
    killed, feeder_done, feeder_errors, ends = threading.Event(), threading.Event(), [], {}  # type: ignore[var-annotated]
    try:
        wait_shared({"sink": sinks, "features": features}, backend.partitions, everyone)

        feeder = threading.Thread(target=feed_in_halves, daemon=True,
                                  args=(backend.kafka, records, killed, feeder_done, feeder_errors, ends))
        feeder.start()
        victims = [features[0]] + ([sinks[0]] if sinks_n > 1 else [])

        def well_underway() -> bool:
            return all(value(v.metrics(), "journey_flush_seconds_count") >= 3
                       and sum(n for (name, _), n in v.metrics().items() if name == "journey_events_in_total") > 2000
                       for v in victims)

        wait_for(well_underway, "the victims working", 90, everyone)
        for victim in victims:  # half the replay is still to come
            victim.kill()
        killed.set()
        survivors = [w for w in everyone if w not in victims]

        feeder.join(120)
        assert not feeder_errors, feeder_errors
        assert sum(ends.values()) == len(records)
        for name in ("scale-features", "scale-sink"):
            progress = GroupProgress(backend.kafka, name)
            wait_for(lambda p=progress: p.remaining(ends) == 0, f"{name} catching up after the kill", 180, survivors)
            progress.close()
        # The survivors own every partition now.
        assert assigned(features[1]) == FEATURES_TOPICS * backend.partitions
        assert sum(assigned(w) for w in survivors if w in sinks) == SINK_TOPICS * backend.partitions

        assert features[1].stop() == 0  # writes its last state and profiles
        outputs = end_offsets_by_eof(backend.kafka, ["customer-features", "late-events"])
        progress = GroupProgress(backend.kafka, "scale-sink")
        live_sinks = [w for w in sinks if w.alive()]
        wait_for(lambda: progress.remaining(outputs) == 0, "every profile stored", 120, live_sinks)
        progress.close()

        # Embedded: read through the sink that owns the database; a server: directly.
        with open_reader(dsn, tmp_path, direct=False) as reader:
            per_type = dict(reader.rows("SELECT type, count() FROM (SELECT type FROM clickstream_events "
                                        "UNION ALL SELECT type FROM order_events) GROUP BY type")[1])
            stored = reader.rows("SELECT (SELECT count() FROM clickstream_events) + (SELECT count() FROM "
                                 "order_events), (SELECT uniqExact(event_id) FROM clickstream_events) + (SELECT "
                                 "uniqExact(event_id) FROM order_events), (SELECT sum(events) FROM "
                                 "events_per_minute)")[1][0]
            columns, rows = reader.rows("SELECT customer_id, features, events_total, as_of, stage, stage_since, "
                                        "segments FROM customer_profiles FINAL")
    finally:
        killed.set()
        feeder_done.wait(120)
        codes = {w.name: w.stop() for w in everyone if w.alive()}
    assert all(code == 0 for code in codes.values()), {n: (c, w.log_tail()) for w in everyone
                                                       for n, c in codes.items() if n == w.name}

    restored = [int(n) for n in re.findall(r"restored (\d+) keys", features[1].log_path.read_text())]
    assert max(restored) > 0, "the survivor restored the killed worker's state from the changelog"
    csv = pd.read_csv(path)
    assert per_type == csv["behavior_type"].map(TYPES).value_counts().to_dict()
    assert tuple(stored) == (len(csv), len(csv), len(csv)), "each event once, in the raw tables and the rollup"
    streamed = {row[0]: flat(dict(zip(columns, row, strict=True))) for row in rows}
    reference = taobao_features(path)
    assert len(rows) == len(streamed) == len(reference), "one profile per customer"
    mismatches = differences(streamed, reference)
    assert not mismatches, f"{len(mismatches)} differences after the kill, first: {mismatches[:5]}"


#: The groups that run two workers in the whole-pipeline test, upstream first.
GROUPS = ("features", "scoring", "triggers", "messages", "deliver")
#: A victim is killed once it has consumed a record of this topic (its furthest-downstream input) and flushed.
KILL_AFTER = {"sink": "clickstream", "features": "clickstream", "scoring": "customer-features",
              "triggers": "clickstream", "messages": "triggers", "deliver": "messages"}
SLICE_CUSTOMERS = 100


def customer_slice(path: Path, out: Path, customers: int) -> list[SourceRecord]:
    """The first ``customers`` Taobao users (by id) written to ``out``, and that file's records in event-time order."""
    frame = pd.read_csv(path, dtype={"user_id": str})
    frame[frame["user_id"].isin(sorted(frame["user_id"].unique())[:customers])].to_csv(out, index=False)
    records, _ = open_source(f"taobao:{out}")
    return list(records)


def working(role: str, victim: WorkerProcess) -> bool:
    samples = victim.metrics()
    return (value(samples, "journey_events_in_total", topic=KILL_AFTER[role]) > 0
            and value(samples, "journey_flush_seconds_count") >= 1)


def distinct(kafka: dict[str, str], topic: str, name: str, partitions: int) -> set[str]:
    return {record[name] for record in read_all(kafka, topic, partitions)}


def landed(reader: Reader) -> dict[str, Any]:
    """What the whole-pipeline run stored, as the comparisons below need it."""
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return reader.rows(sql)[1]

    return {
        "per_type": dict(rows("SELECT type, count() FROM (SELECT type FROM clickstream_events UNION ALL "
                              "SELECT type FROM order_events) GROUP BY type")),
        "stored": rows("SELECT (SELECT count() FROM clickstream_events) + (SELECT count() FROM order_events), "
                       "(SELECT uniqExact(event_id) FROM clickstream_events) + (SELECT uniqExact(event_id) FROM "
                       "order_events), (SELECT sum(events) FROM events_per_minute)")[0],
        "profiles": reader.rows("SELECT customer_id, features, events_total, as_of, stage, stage_since, segments "
                                "FROM customer_profiles FINAL"),
        "scored": set(rows("SELECT customer_id, model FROM scores FINAL")),
        "triggers": {i for (i,) in rows("SELECT trigger_id FROM triggers FINAL")},
        "outcomes": {(g, o): n for g, o, n in rows("SELECT guard, outcome, uniqExact(decision_id) FROM "
                                                   "guard_decisions GROUP BY guard, outcome")},
        "messages": dict(rows("SELECT message_id, trigger_id FROM messages FINAL")),
        "delivered": {i for (i,) in rows("SELECT message_id FROM deliveries FINAL WHERE status = 'delivered'")},
    }


def test_two_workers_of_every_group_one_of_each_sigkilled_mid_replay_give_the_single_worker_result(
        backend: Backend, datasets: Path, tmp_path: Path) -> None:
    """Two workers of each processor group (features, scoring, triggers, messages, deliver) on a Taobao
    slice; one of each is SIGKILLed after it has consumed and committed part of the first half of the
    replay, and the survivors take its partitions over (restoring its state from the changelog).

    Compared with a single-worker reference (the pandas profiles, and the in-process trigger and
    message run of test_triggers_pipeline.py): every event once in the raw tables and the rollup, every
    profile, the scored customers, every trigger id, every guard outcome count, and which triggers were
    messaged with which message id, each message delivered.

    What is left out, and why:

    - The sink: on the embedded chDB one ``journey sink`` owns the database (chDB opens a data path in
      one process only, and two databases would not be one result); it is not killed here
      (test_redelivery.py SIGKILLs it). On a ClickHouse server two sinks share the partitions and one
      of them is killed too.
    - The trainer: not a group (exactly one; it reads every partition and commits by snapshot; its
      restart is test_scoring_pipeline.py's). It does not run, so the scorers keep the initial,
      cold-start models and no band trigger (high intent, churn risk) fires: with a learning trainer a
      score's band depends on which snapshot a scorer had loaded when the profile arrived, which is
      timing, not input, even with one worker of each group.
    - consent/blocked counts and the message texts: the channel order follows the clickstream habit
      seen when the trigger arrives, and recommendations come from what the worker's own customers did
      (processors/messages/processor.py): both depend on interleaving and on which worker a customer
      is on. Every other outcome, the messaged triggers and their ids are exact.
    - Exactly which profiles and scores were emitted on the way: the features worker coalesces a
      customer's changes per flush, so the intermediate profiles (and the scores of them) follow flush
      timing; the latest profile of each customer, and who is scored by which model, do not.
    - Deliveries are at least once: a killed deliverer's last batch is sent again, so the delivery file
      may hold a message twice; the set of delivered messages is exact.
    """
    records = customer_slice(datasets / "taobao_userbehavior_sample.csv", tmp_path / "slice.csv", SLICE_CUSTOMERS)
    fired, made = pipeline(records_of(records), TriggersProcessor(), MessagesProcessor())
    expected_triggers = {orjson.loads(v)["trigger_id"] for _, _, v in fired}
    expected_outcomes = Counter((d["guard"], d["outcome"]) for t, _, v in made if t == "message-decisions"
                                for d in [orjson.loads(v)])
    expected_messages = {m["message_id"]: m["trigger_id"] for t, _, v in made if t == "messages"
                         for m in [orjson.loads(v)]}
    dsn, env = scale_env(backend, tmp_path)
    env["JOURNEY_DELIVERY_FILE"] = str(tmp_path / "delivered.jsonl")
    sinks = [WorkerProcess("sink", env, tmp_path / f"sink-{i}.log", f"sink-{i}")
             for i in range(1 if backend.name == "embedded" else 2)]
    groups = {role: [WorkerProcess(role, env, tmp_path / f"{role}-{i}.log", f"{role}-{i}") for i in range(2)]
              for role in GROUPS} | {"sink": sinks}
    everyone = [w for group in groups.values() for w in group]
    victims = {role: group[0] for role, group in groups.items() if len(group) > 1}
    killed, feeder_done, feeder_errors, ends = threading.Event(), threading.Event(), [], {}  # type: ignore[var-annotated]
    try:
        wait_shared(groups, backend.partitions, everyone)
        feeder = threading.Thread(target=feed_in_halves, daemon=True,
                                  args=(backend.kafka, records, killed, feeder_done, feeder_errors, ends))
        feeder.start()
        wait_for(lambda: all(working(role, v) for role, v in victims.items()), "every victim working", 120,
                 everyone)
        for victim in victims.values():  # half the replay is still to come
            victim.kill()
        killed.set()
        survivors = [w for w in everyone if w not in victims.values()]
        feeder.join(120)
        assert not feeder_errors, feeder_errors
        assert sum(ends.values()) == len(records)

        for role in (*GROUPS, "sink"):  # upstream first: each group's inputs are complete when it is waited for
            caught_up(backend.kafka, group_of("scale", role), topics_of(role, "scale"), survivors)
            assert sum(assigned(w) for w in groups[role] if w.alive()) == topics_read(role) * backend.partitions
            if role == "triggers":  # absence timers fire once every input has been at its end for a while
                wait_for(lambda: distinct(backend.kafka, "triggers", "trigger_id", backend.partitions)
                         >= expected_triggers, "every trigger", 60, survivors)
            if role == "messages":  # and quiet hours release held messages the same way
                wait_for(lambda: distinct(backend.kafka, "messages", "message_id", backend.partitions)
                         >= set(expected_messages), "every message", 60, survivors)
                time.sleep(1.0)  # nothing more may come: a surplus would show below
        with open_reader(dsn, tmp_path, direct=False) as reader:
            got = landed(reader)
    finally:
        killed.set()
        feeder_done.wait(120)
        codes = {w.name: w.stop() for w in everyone if w.alive()}
    assert all(code == 0 for code in codes.values()), {w.name: w.log_tail() for w in everyone if codes.get(w.name)}

    for role in ("features", "scoring", "triggers", "messages"):
        restored = [int(n) for n in re.findall(r"restored (\d+) keys", groups[role][1].log_path.read_text())]
        assert max(restored) > 0, f"the {role} survivor restored the killed worker's state from the changelog"
    csv = pd.read_csv(tmp_path / "slice.csv")
    assert got["per_type"] == csv["behavior_type"].map(TYPES).value_counts().to_dict()
    assert tuple(got["stored"]) == (len(csv), len(csv), len(csv)), "each event once, in the raw tables and rollup"
    reference = taobao_features(tmp_path / "slice.csv")
    columns, profiles = got["profiles"]
    streamed = {row[0]: flat(dict(zip(columns, row, strict=True))) for row in profiles}
    assert len(profiles) == len(streamed) == len(reference) == SLICE_CUSTOMERS
    mismatches = differences(streamed, reference)
    assert not mismatches, f"{len(mismatches)} differences after the kills, first: {mismatches[:5]}"
    buyers = set(csv.loc[csv["behavior_type"] == "buy", "user_id"].astype(str))
    assert got["scored"] == {(c, "purchase_propensity") for c in streamed} | {(c, "churn") for c in buyers}
    assert got["triggers"] == expected_triggers
    consent_blocked = ("consent", "blocked")
    assert {k: v for k, v in got["outcomes"].items() if k != consent_blocked} == {
        k: v for k, v in expected_outcomes.items() if k != consent_blocked}
    assert got["messages"] == expected_messages
    assert got["delivered"] == set(expected_messages)
    lines = (tmp_path / "delivered.jsonl").read_text().splitlines()
    assert {orjson.loads(line)["message_id"] for line in lines} == set(expected_messages)


def views(kafka: dict[str, str], partitions: int, customer: str, minutes: list[int]) -> list[Message]:
    """``customer``'s product views at 10:MM on 2024-05-01, produced and read back from their partition."""
    bodies = [{"event_id": f"{customer}-{m}", "customer_id": customer, "type": "product_view",
               "event_time": f"2024-05-01T10:{m:02d}:00Z", "product_id": "p1"} for m in minutes]
    produce(kafka, [("clickstream", customer.encode(), orjson.dumps(b)) for b in bodies])
    reader = Consumer({**kafka, "group.id": f"read-{customer}"})
    reader.assign([TopicPartition("clickstream", partition_for(customer.encode(), partitions), OFFSET_BEGINNING)])
    try:
        taken: list[Message] = []
        deadline = time.monotonic() + 30
        while len(taken) < len(minutes) and time.monotonic() < deadline:
            taken += [m for m in reader.consume(10, 0.2) if m.error() is None]
        return taken
    finally:
        reader.close()


def test_partitions_assigned_later_hold_the_timers_clock_until_their_records_are_read(backend: Backend) -> None:
    """A worker taking over partitions (a rebalance, a dead member) must not fire their restored timers
    on the clock it had without them: their last owner may have left records uncommitted that move
    those timers. The clock starts again, held until the new partitions have said something."""
    kafka, n = backend.kafka, backend.partitions
    first, second = "c-1", next(f"c-{i}" for i in range(2, 99)
                                if partition_for(f"c-{i}".encode(), n) != partition_for(b"c-1", n))
    worker = StatefulWorker(kafka, "clock", ["clickstream"], "clock-changelog", TriggersProcessor())
    ensure_compacted(kafka, "clock-changelog", "clickstream")
    minute = 60_000
    ten = round(datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp() * 1000)
    try:
        worker.on_assign([TopicPartition("clickstream", partition_for(first.encode(), n))])
        worker.handle(views(kafka, n, first, [0, 40]))
        assert worker.clock() == ten + 40 * minute
        worker.on_assign([TopicPartition("clickstream", partition_for(second.encode(), n))])
        assert worker.clock() is None, "held: the new partition has said nothing yet"
        worker.handle(views(kafka, n, second, [5]))
        assert worker.clock() == ten + 5 * minute
    finally:
        worker.close()
