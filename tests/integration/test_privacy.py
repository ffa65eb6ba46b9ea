"""Erasure end to end on the real broker and chDB, and no clear identifier anywhere.

Real data (Olist reviews hold customers' emails, twcs tweets their phone numbers, Taobao
the clickstream) goes through the edge, the features, scoring, trigger and message workers,
the trainer and the sink. Then a set of customers is erased while the workers are stopped
(among them one with a pending timer and one with predictions held for learning); when they
run again: no table, changelog, compacted profile or pending timer holds them, no trigger
fires for them, their later events start from nothing, every other customer holds the same
rows in every table (plus what their own timers made), and no clear email, phone or IP
address is in ClickHouse or on any topic. The command line (`journey privacy erase` and
`export`) is tested against a running `journey run`.
"""

from __future__ import annotations

import pickle
import pickletools
import random
import re
import signal
import subprocess
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from processors.messages import consent
from processors.triggers.records import Fired, encode, trigger_record
from schemas.personal import holds_identifier
from schemas.registry import DEAD_LETTERS, INPUT_TOPICS
from sinks.access import Reader
from sinks.client import RAW_TABLES, apply_schema
from sinks.ingest import OUTPUT_TABLES
from sinks.privacy import Erasure, customer_tables, erase_many, export, holdings, holdings_of, sweep
from streams.erasure import MARKER
from streams.privacy import committed_past, processor_states, send_request, sink_caught_up
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.pseudonym import Pseudonymizer, load_key
from streams.runfile import running
from streams.settings import load_settings
from streams.sources import open_source
from streams.sources.generator import generate
from streams.topics import CHANGELOG_ROLES, changelogs, delivery_topics, identity_changelog, topic_specs
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.integration.test_cli_run import command, journey, rows, user_env
from tests.integration.test_triggers_pipeline import wait_for, worker

pytestmark = pytest.mark.integration

KEY = "integration-privacy-key-0123456789"
PSEUDO = Pseudonymizer(SecretStr(KEY))
ROLES = ("features", "scoring", "triggers", "messages")  # every stateful processor: each has a changelog
RAW = set(RAW_TABLES.values())
#: Per group: the input topics it reads, and the topics of the stages before it (read to their end in turn).
STAGES = (("features", INPUT_TOPICS, ()), ("scoring", ("orders",), ("customer-features",)),
          ("triggers", INPUT_TOPICS, ("customer-features", "scores")),
          ("messages", INPUT_TOPICS, ("customer-features", "triggers")), ("trainer", (), ("model-labels",)))
#: Output topics whose records become rows of a table, each row told apart by its key: a stage
#: timer's profile is a new version in the history (its customer_profiles row is replaced).
NEW_ROWS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "triggers": ("triggers", itemgetter("trigger_id")),
    "message-decisions": ("guard_decisions", itemgetter("decision_id")),
    "messages": ("messages", itemgetter("message_id")),
    "customer-features": ("customer_profile_history", itemgetter("events_total", "as_of")),
}


Records = list[tuple[bytes | None, bytes | None]]


def read_topics(kafka: dict[str, str], topics: list[str], partitions: int,
                start: dict[tuple[str, int], int] | None = None) -> dict[str, Records]:
    """Every record (key, value) of each topic, from ``start`` (default: the beginning) to the end of each
    partition, read by one consumer."""
    reader = Consumer({**kafka, "group.id": f"scan-{uuid.uuid4().hex[:6]}", "enable.partition.eof": True,
                       "enable.auto.commit": False})
    begin = start or {}
    pending = {(t, p) for t in topics for p in range(partitions)}
    reader.assign([TopicPartition(t, p, begin.get((t, p), OFFSET_BEGINNING)) for t, p in sorted(pending)])
    out: dict[str, Records] = {t: [] for t in topics}
    try:
        while pending:
            for msg in reader.consume(10_000, 1.0):
                if msg.error() is not None:
                    if msg.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                        pending.discard((msg.topic(), msg.partition()))  # at its end, or a topic nobody created
                    continue
                out[msg.topic()].append((msg.key(), msg.value()))
    finally:
        reader.close()
    return out


def read_topic(kafka: dict[str, str], topic: str, partitions: int) -> Records:
    """Every record of ``topic`` (key, value), read to the end of each partition."""
    return read_topics(kafka, [topic], partitions)[topic]


def latest(records: Records) -> dict[bytes, bytes | None]:
    """A compacted topic's content: the last value per key (None: a tombstone)."""
    state: dict[bytes, bytes | None] = {}
    for key, value in records:
        if key is not None:
            state[key] = value
    return state


def states(changelog: Records) -> dict[str, Any]:
    """What a restart restores from a changelog's records: the state per customer (no tombstones, no markers)."""
    return {k.decode(): pickle.loads(v).state for k, v in latest(changelog).items()
            if v is not None and not k.startswith(MARKER.encode())}


def run_workers(backend: Backend, env: dict[str, str], prefix: str, ends: dict[tuple[str, int], int]) -> None:
    """Run the four processors and the trainer until each group has read ``ends`` and what the stages before made."""
    with ExitStack() as stack:
        procs = [stack.enter_context(worker(role, env)) for role in (*ROLES, "trainer")]
        for role, inputs, made in STAGES:
            stage = {tp: n for tp, n in ends.items() if tp[0] in inputs}
            stage.update(end_offsets_by_eof(backend.kafka, list(made)))
            progress = GroupProgress(backend.kafka, f"{prefix}-{role}")
            wait_for(lambda p=progress, s=stage: p.remaining(s) == 0, f"{role} to read its inputs", procs)
            progress.close()


def settled(client: Any, reader: Reader, customers: list[str]) -> dict[str, Counter[str]]:
    """Rows per table held about each customer once every table is merged (OPTIMIZE FINAL): a replaced or
    aggregated row counts once, so two snapshots differ by new rows, not by when background merges ran."""
    for table in customer_tables(reader):
        client.command(f"OPTIMIZE TABLE `{table}` FINAL")
    return {c: Counter(held) for c, held in holdings_of(reader, customers).items()}


def made_since(kafka: dict[str, str], partitions: int, marks: dict[tuple[str, int], int]) -> dict[str, list[Any]]:
    """Per customer, the output records (topic, JSON value) produced after ``marks``."""
    made: dict[str, list[Any]] = defaultdict(list)
    for topic, records in read_topics(kafka, list(OUTPUT_TABLES), partitions, marks).items():
        for _, value in records:
            record = orjson.loads(value) if value else {}
            if record.get("customer_id"):
                made[record["customer_id"]].append((topic, record))
    return made


def new_rows(made: list[tuple[str, Any]]) -> Counter[str]:
    """The table rows that output records add: one per distinct id (a record sent again replaces its row)."""
    return Counter(NEW_ROWS[topic][0] for topic, _ in {(t, NEW_ROWS[t][1](r)) for t, r in made})


def json_strings(value: Any) -> Iterator[str]:
    """Every string of a JSON document (keys and values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def strings_in(value: bytes) -> list[str]:
    """Every string a topic record holds: a JSON document's, a pickle's (changelogs, model snapshots, read
    without loading it), or else its text."""
    try:
        return list(json_strings(orjson.loads(value)))
    except orjson.JSONDecodeError:
        pass
    try:
        return [arg for _, arg, _ in pickletools.genops(value) if isinstance(arg, str)]
    except ValueError:
        return [value.decode("utf-8", "replace")]


def test_erasure_everywhere_and_no_clear_identifiers(backend: Backend, datasets: Path, tmp_path: Path) -> None:
    taobao, _ = open_source(f"taobao:{datasets / 'taobao_userbehavior_sample.csv'}")
    olist, _ = open_source(f"olist:{datasets / 'olist'}")
    twcs, _ = open_source(f"twcs:{datasets / 'twcs_head5000.csv'}")
    redacted = {r.key for r in olist + twcs if r.topic == "chat" and re.search(rb"\[(email|phone)\]", r.value)}
    keep = set(sorted({r.key for r in taobao})[:40]) | redacted | set(sorted({r.key for r in olist})[:40])
    records = [r for r in taobao + olist + twcs if r.key in keep]
    assert len(redacted) >= 5 and len(records) > 3000
    fed = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])

    prefix = f"pv-{uuid.uuid4().hex[:6]}"
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_GROUP_PREFIX": prefix,
           "JOURNEY_IDENTITY_RESOLUTION": "false",  # features read the raw inputs (no identity stage here)
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2", "JOURNEY_DATA_DIR": str(tmp_path),
           "JOURNEY_PRIVACY_KEY": KEY, "JOURNEY_TOPIC_PARTITIONS": str(backend.partitions)}
    run_workers(backend, env, prefix, fed.end_offsets)
    client = backend.client()
    outputs = [*OUTPUT_TABLES, DEAD_LETTERS]
    sink_until_caught_up(backend, client, {**fed.end_offsets, **end_offsets_by_eof(backend.kafka, outputs)},
                         group=f"{prefix}-sink")
    ours = {role: changelogs(prefix)[role] for role in ROLES}
    held_then = read_topics(backend.kafka, [ours["triggers"], ours["scoring"]], backend.partitions)
    timed = sorted(c for c, s in states(held_then[ours["triggers"]]).items() if s.timers)
    holding = sorted(c for c, s in states(held_then[ours["scoring"]]).items() if s.held)
    assert timed and holding

    # Erase customers with clickstream, orders and messages (taobao), with chat (olist, twcs), with a
    # pending timer and with predictions held for learning (labels not known yet).
    messaged = {c for (c,) in client.query("SELECT DISTINCT customer_id FROM messages").result_rows}
    taobao_ids = sorted({r.key.decode() for r in taobao if r.key in keep})
    erased = sorted(set(sorted(messaged)[:3]) | set(taobao_ids[:2]) | {k.decode() for k in sorted(redacted)[:3]}
                    | set(timed[:1]) | set(holding[:1]))
    assert len(erased) >= 6 and set(erased) & set(timed) and set(erased) & set(holding)
    reader = Reader("test", client=client)
    customers = sorted({r.key.decode() for r in records})
    before = settled(client, reader, customers)
    assert {"scores", "triggers"} <= set().union(*(before[c] for c in erased))
    exported = export(reader, erased[0], PSEUDO.subject(erased[0]))
    assert {t: len(rows) for t, rows in exported.items()} == holdings(reader, erased[0])
    held = processor_states(backend.kafka, ours, erased[0], backend.partitions)
    assert {"features", "triggers", "messages"} <= set(held)  # what the processors hold goes into the export too
    assert held["features"]["events"] == sum(r.key.decode() == erased[0] for r in records)
    # The pipeline is stopped: ClickHouse now (all of them in one pass), processors when they run again.
    erase_many(reader, [Erasure(c, PSEUDO.subject(c)) for c in erased])
    requests = {}
    for customer in erased:
        _, [(partition, offset)] = send_request(backend.kafka, backend.partitions, customer,
                                                PSEUDO.subject(customer))
        requests[customer] = (partition, offset)
        assert holdings(reader, customer) == {}
    assert not committed_past(backend.kafka, f"{prefix}-features", *requests[erased[0]])  # not applied yet

    # Later events of an erased customer: a fresh state, not the old one revived. Being live (a minute
    # old), they move the triggers' clock to the wall clock: every timer still pending falls due.
    comeback = erased[0]
    now = datetime.now(UTC) - timedelta(minutes=1)
    later = [("clickstream", comeback.encode(), orjson.dumps({
        "event_id": f"later-{i}", "customer_id": comeback, "event_time": (now + timedelta(seconds=i)).isoformat(),
        "type": "product_view", "product_id": f"p{i}"})) for i in range(3)]
    more = produce(backend.kafka, later)
    marks = end_offsets_by_eof(backend.kafka, list(OUTPUT_TABLES))
    run_workers(backend, env, prefix, {**fed.end_offsets, **more.end_offsets})
    for role in ROLES:
        for customer, (partition, offset) in requests.items():
            assert committed_past(backend.kafka, f"{prefix}-{role}", partition, offset), (role, customer)
    sink_until_caught_up(backend, client, {**fed.end_offsets, **more.end_offsets,
                                           **end_offsets_by_eof(backend.kafka, outputs)}, group=f"{prefix}-sink")

    # Changelogs (what a restart restores), the compacted profiles and the timers hold no erased customer.
    gone = set(erased) - {comeback}
    # No identity stage runs here (identity resolution off), so its changelog was not made.
    every_topic = [spec.name for spec in topic_specs(backend.partitions, prefix)
                   if spec.name != identity_changelog(prefix)]
    existing = set(AdminClient(backend.kafka).list_topics(timeout=10).topics)
    assert set(every_topic) <= existing
    every_topic += [t for t in delivery_topics(prefix) if t in existing]  # created by a delivery worker, if one ran
    on_topics = read_topics(backend.kafka, every_topic, backend.partitions)
    for role, changelog in ours.items():
        restored = latest(on_topics[changelog])
        live = {k.decode() for k, v in restored.items() if v is not None}
        assert not live & gone, f"{changelog} still holds {sorted(live & gone)}"
        markers = {k.removeprefix(MARKER) for k in live if k.startswith(MARKER)}
        assert {PSEUDO.subject(c) for c in erased} <= markers, role
    after_states = {role: states(on_topics[ours[role]]) for role in ROLES}
    assert after_states["features"][comeback].events == 3, "the later events started a fresh state"
    assert comeback not in after_states["scoring"], "the scorer keeps no state for an erased customer"
    profiles = latest(on_topics["customer-features"])
    assert all(profiles.get(k.encode()) is None for k in gone)
    assert orjson.loads(profiles[comeback.encode()] or b"{}")["events_total"] == 3

    # No trigger fired for an erased customer since, though the pending timers of the others did fire.
    made = made_since(backend.kafka, backend.partitions, marks)
    fired = {c: [r for topic, r in made[c] if topic == "triggers"] for c in made}
    assert not {c for c in gone if fired.get(c)}, "a trigger fired for an erased customer"
    assert {r["source_event_id"] for r in fired.get(comeback, [])} <= {f"later-{i}" for i in range(3)}
    assert {c for c in set(timed) - set(erased) if any(r["fired_by"] == "timer" for r in fired.get(c, []))}

    # ClickHouse: nothing about the erased customers (the comeback only holds its 3 new events and their outputs).
    for customer in erased:
        rows_held = holdings(reader, customer)
        if customer == comeback:
            assert rows_held.get("clickstream_events") == 3 and not {"order_events", "chat_messages"} & set(rows_held)
            assert not client.query("SELECT count() FROM messages WHERE customer_id = {c:String}",
                                    parameters={"c": customer}).result_rows[0][0]
        else:
            assert rows_held == {}, customer
    for table in customer_tables(reader):
        n = client.query(f"SELECT count() FROM `{table}` WHERE customer_id IN {{c:Array(String)}}",
                         parameters={"c": sorted(gone)}).result_rows[0][0]
        assert n == 0, table
    audit = client.query("SELECT location, count() FROM privacy_audit GROUP BY location").result_rows
    assert {f"processor:{r}" for r in ROLES} <= {loc for loc, _ in audit}
    assert not client.query("SELECT count() FROM privacy_audit WHERE subject IN {c:Array(String)}",
                            parameters={"c": erased}).result_rows[0][0], "the audit never holds a clear id"

    # Every other customer holds what they held before, in every table, plus the rows of what their
    # timers made since (triggers, guard decisions, messages, profile versions), and nothing else.
    others = sorted(set(customers) - set(erased))
    # Scores are refreshed as event time passes (the scorer's re-scoring timers): a new score replaces the
    # row of its customer and model, so scores are compared as held, never lost, and the rest exactly.
    assert {topic for c in others for topic, _ in made[c]} <= set(NEW_ROWS) | {"scores"}
    after = settled(client, reader, others)
    for c in others:
        assert after[c]["scores"] >= before[c]["scores"], c
    without_scores = {c: Counter({t: n for t, n in after[c].items() if t != "scores"}) for c in others}
    assert without_scores == {c: Counter({t: n for t, n in before[c].items() if t != "scores"})
                              + new_rows([m for m in made[c] if m[0] != "scores"]) for c in others}

    # No clear identifier in ClickHouse (every String, Array and Map column of every table) or on any topic.
    text = "arrayMap(x -> toString(x), {})"
    for table in [t for (t,) in client.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                             "AND engine LIKE '%MergeTree'").result_rows]:
        columns = client.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() AND "
                               "table = {t:String} AND type LIKE '%String%'", parameters={"t": table}).result_rows
        values = [f"{text.format(f'mapKeys(`{c}`)')}, {text.format(f'mapValues(`{c}`)')}" if kind.startswith("Map")
                  else text.format(f"`{c}`") if kind.startswith("Array") else f"[toString(`{c}`)]"
                  for c, kind in columns]
        found = client.query(f"SELECT DISTINCT arrayJoin(arrayConcat({', '.join(values)})) FROM `{table}`").result_rows
        leaks = [v for (v,) in found if holds_identifier(v)]
        assert not leaks, f"{table}: {leaks[:1]}"
    for topic in every_topic:
        leaks = [s for _, value in on_topics[topic] if value for s in strings_in(value) if holds_identifier(s)]
        assert not leaks, f"{topic}: {leaks[:1]}"


def test_a_trigger_in_flight_for_an_erased_customer_is_blocked_and_makes_no_state(
        backend: Backend, tmp_path: Path) -> None:
    """The messages worker applied an erasure; a trigger about that customer, made before the triggers
    worker applied it, arrives afterwards: it is blocked (recorded under the HMAC subject, never the id),
    and the customer gets no state back."""
    prefix = f"pf-{uuid.uuid4().hex[:6]}"
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_GROUP_PREFIX": prefix,
           "JOURNEY_IDENTITY_RESOLUTION": "false",  # features read the raw inputs (no identity stage here)
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2", "JOURNEY_DATA_DIR": str(tmp_path),
           "JOURNEY_PRIVACY_KEY": KEY, "JOURNEY_TOPIC_PARTITIONS": str(backend.partitions)}
    customer = f"c-{uuid.uuid4().hex[:8]}"
    subject = PSEUDO.subject(customer)
    _, [(partition, offset)] = send_request(backend.kafka, backend.partitions, customer, subject)
    fired = trigger_record(customer, Fired("cart_abandoned", int(datetime.now(UTC).timestamp() * 1000) - 60_000,
                                           f"e-{customer}", "timer", "cart idle for 30 minutes"))
    with worker("messages", env) as messages:
        wait_for(lambda: committed_past(backend.kafka, f"{prefix}-messages", partition, offset),
                 "the messages worker to apply the erasure", [messages])
        sent = produce(backend.kafka, [("triggers", customer.encode(), encode(fired))])
        progress = GroupProgress(backend.kafka, f"{prefix}-messages")
        wait_for(lambda: progress.remaining(sent.end_offsets) == 0, "the messages worker to read the trigger",
                 [messages])
        progress.close()
    restored = latest(read_topic(backend.kafka, changelogs(prefix)["messages"], backend.partitions))
    assert restored.get(customer.encode()) is None, "the erased customer has a state again"
    assert (MARKER + subject).encode() in restored
    records = read_topic(backend.kafka, "message-decisions", backend.partitions)
    assert not [v for _, v in records if v and customer.encode() in v], "a decision names the erased customer"
    decisions = [orjson.loads(v) for k, v in records if k == subject.encode() and v is not None]
    assert [(d["guard"], d["outcome"], d["customer_id"]) for d in decisions if d["trigger_id"] == fired.trigger_id
            ] == [("privacy", "blocked", subject)]


def test_rows_in_flight_at_the_erasure_are_swept_once_the_sink_stored_them(backend: Backend) -> None:
    """Erased while the sink had not stored the customer's events yet: the first pass finds nothing,
    the sink stores them, and the second pass (after the sink caught up) deletes exactly those."""
    client = backend.client()
    reader = Reader("test", client=client)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events = [("clickstream", c.encode(), orjson.dumps({
        "event_id": f"{c}-{i}", "customer_id": c, "event_time": (start + timedelta(minutes=i)).isoformat(),
        "type": "product_view", "product_id": f"p{i}"})) for c, n in (("gone-1", 4), ("kept-1", 3)) for i in range(n)]
    group = f"sweep-{uuid.uuid4().hex[:6]}"
    request = Erasure("gone-1", PSEUDO.subject("gone-1"))
    assert erase_many(reader, [request]) == {"gone-1": {}}  # nothing stored yet: the events are in flight
    fed = produce(backend.kafka, events)
    assert not sink_caught_up(backend.kafka, group, timeout=0)
    sink_until_caught_up(backend, client, fed.end_offsets, group=group)
    landed = holdings(reader, "gone-1")
    assert landed["clickstream_events"] == 4
    kept = holdings(reader, "kept-1")
    assert sink_caught_up(backend.kafka, group, timeout=5)
    assert sweep(reader, [request]) == {"gone-1": landed}
    assert holdings(reader, "gone-1") == {} and holdings(reader, "kept-1") == kept
    audit = client.query("SELECT location, rows FROM privacy_audit WHERE request_id = {r:String} AND detail LIKE "
                         "'%in flight%' ORDER BY location", parameters={"r": request.request_id}).result_rows
    assert audit == [(f"clickhouse:{table}", n) for table, n in sorted(landed.items())]


#: `journey run` traffic in which two customers' every event is in the first 7% of the event time, so
#: a paced run has stored them long before it ends: one is erased, the other exported, while it runs.
LIVE_TRAFFIC = {"customers": 60, "days": 4, "seed": 3}
LIVE_ERASED, LIVE_EXPORTED = "c000055", "c000057"


def direct_counts(cwd: Path, customer_id: str, subject: str) -> dict[str, int]:
    """Rows per table about the customer, counted by `journey query`: every table with a ``customer_id``
    column, dead letters naming them, audit rows under their subject (tables with none left out)."""
    tables = [r["t"] for r in rows(cwd, "SELECT DISTINCT table AS t FROM system.columns WHERE name = 'customer_id' "
                                        "AND database = currentDatabase() AND table IN (SELECT name FROM system.tables "
                                        "WHERE database = currentDatabase() AND engine LIKE '%MergeTree')")]
    counts = [f"SELECT '{t}' AS t, count() AS n FROM `{t}` WHERE customer_id = '{customer_id}'" for t in tables]
    counts.append(f"SELECT 'dead_letters' AS t, count() AS n FROM dead_letters WHERE key = '{customer_id}' OR "
                  f"position(original, '\"{customer_id}\"') > 0")  # stored as the raw bytes, not base64
    counts.append(f"SELECT 'privacy_audit' AS t, count() AS n FROM privacy_audit WHERE subject = '{subject}'")
    return {r["t"]: r["n"] for r in rows(cwd, " UNION ALL ".join(counts)) if r["n"]}


def export_file(cwd: Path, customer_id: str, name: str) -> dict[str, Any]:
    out = cwd / name
    result = journey("privacy", "export", customer_id, "--out", str(out), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(orjson.loads(out.read_bytes()))


def test_erase_and_export_from_the_command_line_while_journey_run_works(tmp_path: Path) -> None:
    """`journey privacy erase` and `export` against a paced `journey run` in the background, and `export`
    again once it has stopped: the report, the processors, and the file's rows against a direct count."""
    traffic = generate(**LIVE_TRAFFIC)
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)  # customer -> (topic, event id)
    for record in traffic:
        event = orjson.loads(record.value)
        events[event["customer_id"]].append((record.topic, event["event_id"]))
    ours = (LIVE_ERASED, LIVE_EXPORTED)
    assert {t for c in ours for t, _ in events[c]} == {"clickstream", "consent"}
    # 4 days of traffic at 2,400 times event time: about 145 s of feeding, the two customers in the first 10 s.
    args = [f"--{k}={v}" for k, v in LIVE_TRAFFIC.items()]
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen(command("run", *args, "--speedup", "2400"), cwd=tmp_path, env=user_env(),
                               stdout=log, stderr=log)
    try:
        data = tmp_path / ".journey"
        wait_for(lambda: running(data) is not None and (data / "clickhouse-owner.json").exists(),
                 "the run's sink to serve queries", [run], timeout=120)
        quoted = ", ".join(f"'{c}'" for c in ours)
        stored_sql = (f"SELECT customer_id AS c, count() AS n FROM (SELECT customer_id FROM clickstream_events "
                      f"UNION ALL SELECT customer_id FROM consent_events) WHERE c IN ({quoted}) GROUP BY c")
        profiled_sql = (f"SELECT customer_id AS c, max(events_total) AS n FROM customer_profiles "
                        f"WHERE customer_id IN ({quoted}) GROUP BY c")
        expected = {c: len(events[c]) for c in ours}
        wait_for(lambda: {r["c"]: r["n"] for r in rows(tmp_path, stored_sql)} == expected
                 and {r["c"]: r["n"] for r in rows(tmp_path, profiled_sql)} == expected,
                 "both customers' events stored and profiled", [run], timeout=120)

        before = direct_counts(tmp_path, LIVE_ERASED, "")
        erased = journey("privacy", "erase", LIVE_ERASED, cwd=tmp_path)
        assert erased.returncode == 0, erased.stderr[-3000:]
        [report] = [orjson.loads(line) for line in erased.stdout.splitlines()]
        assert report["processors"] == dict.fromkeys([*CHANGELOG_ROLES, "identity"], "applied")
        deleted = report["clickhouse_rows_deleted"]
        fed = Counter(RAW_TABLES[t] for t, _ in events[LIVE_ERASED])
        assert {t: n for t, n in deleted.items() if t in RAW} == {t: n for t, n in before.items() if t in RAW} == fed
        assert isinstance(report["clickhouse_in_flight"], dict), report  # the sink caught up: second pass done
        subject = report["subject"]
        assert set(direct_counts(tmp_path, LIVE_ERASED, subject)) == {"privacy_audit"}

        live = export_file(tmp_path, LIVE_EXPORTED, "live.json")
        assert live["customer_id"] == LIVE_EXPORTED
        assert live["processor_state"]["features"]["events"] == len(events[LIVE_EXPORTED])
        assert {"features", "triggers", "scoring"} <= set(live["processor_state"])
        assert sorted((r["event_id"]) for r in live["clickhouse"]["clickstream_events"]) == sorted(
            e for t, e in events[LIVE_EXPORTED] if t == "clickstream")
        gone = export_file(tmp_path, LIVE_ERASED, "erased-live.json")
        assert gone["processor_state"] == {} and set(gone["clickhouse"]) == {"privacy_audit"}
    finally:
        if run.poll() is None:  # on a busy machine the feed may have ended first
            run.send_signal(signal.SIGINT)  # stopped by the user: workers and broker go, the database stays
        assert run.wait(120) in (0, 130), (tmp_path / "run.log").read_text()[-3000:]

    held = direct_counts(tmp_path, LIVE_EXPORTED, Pseudonymizer(load_key(None, data)).subject(LIVE_EXPORTED))
    after = export_file(tmp_path, LIVE_EXPORTED, "after.json")
    assert after["processor_state"] == {}, "the embedded broker, and every processor state, went with the run"
    assert {t: len(v) for t, v in after["clickhouse"].items()} == held
    assert set(held) >= {"clickstream_events", "consent_events", "customer_profiles", "privacy_audit"}
    assert set(direct_counts(tmp_path, LIVE_ERASED, subject)) == {"privacy_audit"}, "the run brought none back"


def ttls(client: Any) -> dict[str, str | None]:
    """The TTL clause of every table with a time column a retention could use (None: no TTL)."""
    found: dict[str, str | None] = {}
    for table in (*RAW, "late_events", "dead_letters"):
        create = client.command(f"SHOW CREATE TABLE `{table}`")
        match = re.search(r"^TTL (.+)$", str(create).replace("\\n", "\n"), re.M)
        found[table] = match.group(1) if match else None
    return found


def test_retention_expires_events_and_dead_letters_and_keeps_the_consent_history(
        backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client = backend.client()
    monkeypatch.chdir(tmp_path)  # no settings file: the environment only
    # A TTL an earlier version gave the consent history is taken away.
    client.command("ALTER TABLE consent_events MODIFY TTL toDateTime(event_time) + INTERVAL 30 DAY")
    monkeypatch.setenv("JOURNEY_RAW_RETENTION_DAYS", "30")
    apply_schema(client, load_settings().raw_retention_days)  # what `journey run` and `journey sink` do at start
    by_event_time = "toDateTime(event_time) + toIntervalDay(30)"
    assert ttls(client) == {"clickstream_events": by_event_time, "order_events": by_event_time,
                            "chat_messages": by_event_time, "late_events": by_event_time,
                            "dead_letters": "toDateTime(received_at) + toIntervalDay(30)", "consent_events": None}

    # The TTL removes old rows at the next merge; the consent events of the same age stay.
    old, recent = datetime.now(UTC) - timedelta(days=31), datetime.now(UTC) - timedelta(days=29)
    for name, at in (("old", old), ("recent", recent)):
        client.command(f"INSERT INTO clickstream_events (event_id, customer_id, event_time, type, channel, "
                       f"schema_version, source_partition, source_offset, ingested_at) VALUES ('{name}', 'r1', "
                       f"'{at:%Y-%m-%d %H:%M:%S}', 'page_view', 'web', 1, 0, 0, now64(3))")
        client.command(f"INSERT INTO consent_events (event_id, customer_id, event_time, type, channel, status, "
                       f"purpose, schema_version, source_partition, source_offset, ingested_at) VALUES ('{name}', "
                       f"'r1', '{at:%Y-%m-%d %H:%M:%S}', 'consent_changed', 'email', 'granted', 'marketing', 1, 0, 0, "
                       "now64(3))")
        client.command(f"INSERT INTO dead_letters (dead_letter_id, source_topic, source_partition, source_offset, "
                       f"reason, detail, original, received_at) VALUES ('{name}', 'clickstream', 0, 0, 'invalid', "
                       f"'', '', '{at:%Y-%m-%d %H:%M:%S}')")
    for table in ("clickstream_events", "consent_events", "dead_letters"):
        client.command(f"OPTIMIZE TABLE `{table}` FINAL")
    assert client.query("SELECT event_id FROM clickstream_events").result_rows == [("recent",)]
    assert client.query("SELECT dead_letter_id FROM dead_letters").result_rows == [("recent",)]
    assert sorted(client.query("SELECT event_id FROM consent_events").result_rows) == [("old",), ("recent",)]

    monkeypatch.delenv("JOURNEY_RAW_RETENTION_DAYS")
    apply_schema(client, load_settings().raw_retention_days)
    assert ttls(client) == dict.fromkeys(ttls(client))  # unset: no table has a TTL
    apply_schema(client, load_settings().raw_retention_days)  # and again: nothing to remove is no error


def test_consent_history_gives_each_change_its_period_from_out_of_order_events(backend: Backend) -> None:
    """Consent events sent out of event-time order (ties in time, a duplicate) through the sink: every
    change's valid_from, valid_until and current are those of a fold in event-time order, and the current
    rows are what the message guard's fold (newest by time, then id) holds."""
    rng = random.Random(8)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    events = []
    for i in range(60):
        at = start + timedelta(hours=rng.randrange(48))  # 60 changes in 48 hours: several share a time
        events.append({"event_id": f"k{i:02d}", "customer_id": f"cust-{rng.randrange(3)}", "type": "consent_changed",
                       "event_time": at.isoformat(), "channel": rng.choice(["email", "sms"]),
                       "purpose": rng.choice(["marketing", "service"]), "status": rng.choice(["granted", "withdrawn"]),
                       "source": "preference centre"})
    sent = [*events, events[7]]  # the same event twice: stored once
    rng.shuffle(sent)
    client = backend.client()
    fed = produce(backend.kafka, [("consent", e["customer_id"].encode(), orjson.dumps(e)) for e in sent])
    sink_until_caught_up(backend, client, fed.end_offsets)

    periods: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        periods[(e["customer_id"], e["purpose"], e["channel"])].append(e)
    assert any(len({e["event_time"] for e in g}) < len(g) for g in periods.values()), "a tie in time, broken by id"
    expected = set()
    for group in periods.values():
        group.sort(key=lambda e: (e["event_time"], e["event_id"]))
        for e, following in zip(group, [*group[1:], None], strict=True):
            expected.add((e["event_id"], e["customer_id"], e["purpose"], e["channel"], e["status"],
                          datetime.fromisoformat(e["event_time"]),
                          None if following is None else datetime.fromisoformat(following["event_time"]),
                          following is None))
    result = client.query("SELECT event_id, customer_id, purpose, channel, status, valid_from, valid_until, current "
                          "FROM consent_history")
    stored = {(*r[:5], r[5].astimezone(UTC), r[6] and r[6].astimezone(UTC), bool(r[7])) for r in result.result_rows}
    assert len(result.result_rows) == len(events) and stored == expected

    guard: dict[str, consent.ConsentBook] = defaultdict(dict)
    for e in sent:
        consent.record(guard[e["customer_id"]], e["purpose"], e["channel"],
               int(datetime.fromisoformat(e["event_time"]).timestamp() * 1000), e["event_id"], e["status"])
    in_force = {(r[1], r[2], r[3], r[4]) for r in stored if r[7]}
    assert in_force == {(c, p, ch, consent.status_at(book, p, ch, None)) for c, book in guard.items()
                        for (p, ch) in book}
