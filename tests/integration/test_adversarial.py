"""The adversarial corpus (tests/integration/corpus.py) through a running features worker and sink.

Every kind of bad or hostile record, interleaved with real good records (a slice of the Taobao
sample), goes through one features worker and one sink on the broker and ClickHouse. Exact
counts: every good record stored once, every accepted corpus record stored once (a redelivered
duplicate not again), every bad record one dead letter with its reason in ``dead_letters`` and
on the ``dead-letters`` topic, the late one in ``late_events``, no worker exits, and the good
customers' profiles equal an independent batch computation over the good records only (a bad
record that leaked into a profile would show). Failures are listed per kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, Message, Producer

from plumbing.produce import PARTITIONER
from schemas.registry import DEAD_LETTERS, INPUT_TOPICS
from sinks.client import RAW_TABLES
from streams.progress import end_offsets_by_eof
from streams.sources import open_source
from tests.conftest import Backend, sink_until_caught_up
from tests.integration.corpus import CLEAR_IDENTIFIER, CPF, DEAD, DUPLICATE, LATE, PHONE, STORED, VICTIM, Case, corpus
from tests.integration.test_features_exact import run_features
from tests.integration.test_scoring_pipeline import read_all
from tests.processors.features.compare import differences, flat
from tests.processors.features.reference import taobao_features

pytestmark = pytest.mark.integration

#: Lines of the Taobao sample used as the good records (sorted by user: about 30 customers, 3000 events).
GOOD_LINES = 3000

Record = tuple[str, bytes | None, bytes | None]
Position = tuple[str, int, int]


def taobao_slice(datasets: Path, directory: Path) -> Path:
    """The first ``GOOD_LINES`` events of the Taobao sample as a CSV file of their own."""
    path = directory / "taobao_slice.csv"
    with (datasets / "taobao_userbehavior_sample.csv").open(encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(GOOD_LINES + 1), source, strict=False)),
                        encoding="utf-8")
    return path


def interleave(good: list[Record], cases: list[Case]) -> Iterator[tuple[Case | None, Record]]:
    """The good records with the corpus spread evenly among them, each keeping its own order."""
    step = max(1, len(good) // (len(cases) + 1))
    pending = iter(cases)
    for i, record in enumerate(good):
        yield None, record
        if i % step == step - 1:
            case = next(pending, None)
            if case is not None:
                yield case, (case.topic, case.key, case.value)
    for case in pending:
        yield case, (case.topic, case.key, case.value)


def produce_tracked(kafka: dict[str, str], records: list[Record]) -> tuple[list[Position], dict[tuple[str, int], int]]:
    """Send the records; where each one landed (topic, partition, offset), and each partition's end."""
    producer = Producer({**kafka, "partitioner": PARTITIONER, "linger.ms": 20, "enable.idempotence": False,
                         "message.max.bytes": 32_000_000})
    landed: list[Position | None] = [None] * len(records)
    errors: list[str] = []

    def delivered(index: int) -> Any:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(f"record {index}: {err.str()}")
            else:
                landed[index] = (msg.topic(), msg.partition(), msg.offset())
        return report

    for index, (topic, key, value) in enumerate(records):
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered(index))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0 and not errors, f"not produced: {errors[:3]}"
    positions = [p for p in landed if p is not None]
    assert len(positions) == len(records)
    ends: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
    return positions, ends


def allow_large_records(backend: Backend, max_bytes: int = 32_000_000) -> None:
    """Let the input topics take the corpus's 5-10 MB records (Apache Kafka refuses over 1 MB by default).

    The embedded broker takes records of any size, so it is left as it is.
    """
    if backend.name == "embedded":
        return
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    entry = ConfigEntry("max.message.bytes", str(max_bytes), incremental_operation=AlterConfigOpType.SET)
    resources = [ConfigResource("topic", topic, incremental_configs=[entry]) for topic in INPUT_TOPICS]
    for future in AdminClient(backend.kafka).incremental_alter_configs(resources).values():
        future.result()


def event_ms(body: dict[str, Any]) -> int:
    return round(datetime.fromisoformat(body["event_time"].replace("Z", "+00:00")).timestamp() * 1000)


def test_adversarial_corpus_through_a_running_sink_and_features_worker(backend: Backend, datasets: Path,
                                                                      tmp_path: Path) -> None:
    cases = corpus()
    assert len(cases) >= 60
    good_path = taobao_slice(datasets, tmp_path)
    good_records, _ = open_source(f"taobao:{good_path}")
    good = [(r.topic, r.key, r.value) for r in good_records]
    assert VICTIM.encode() in {key for _, key, _ in good}, "bad records pretend to come from a good customer"
    plan = list(interleave(good, cases))
    allow_large_records(backend)
    positions, ends = produce_tracked(backend.kafka, [record for _, record in plan])
    where: dict[str, Position] = {case.name: pos for (case, _), pos in zip(plan, positions, strict=True) if case}

    accepted = [c for c in cases if c.outcome in (STORED, LATE)]
    newest = max([round(r.event_time.timestamp() * 1000) for r in good_records if r.event_time is not None]
                 + [event_ms(c.event) for c in accepted])
    input_ends = {tp: end for tp, end in ends.items() if tp[0] in INPUT_TOPICS}
    worker = run_features(backend, input_ends, group="features-adversarial", watermark_ms=newest)
    inputs = sum(1 for topic, _, _ in [*good, *[(c.topic, c.key, c.value) for c in cases]] if topic in INPUT_TOPICS)
    assert worker.stats.consumed == inputs, "the features worker read every record once and kept running"

    client = backend.client()
    outputs = end_offsets_by_eof(backend.kafka, ["customer-features", "late-events"])
    stats = sink_until_caught_up(backend, client, {**ends, **outputs}, timeout=180)
    assert sum(stats.consumed[t] for t in INPUT_TOPICS) == inputs, "the sink read every record once"

    problems: list[str] = []

    # -- raw tables: every good and every accepted record once, nothing else -------------------------
    stored: dict[str, dict[str, tuple[int, int]]] = {}
    for topic, table in RAW_TABLES.items():
        rows = client.query(f"SELECT event_id, source_partition, source_offset FROM {table}").result_rows
        ids = Counter(r[0] for r in rows)
        twice = [i for i, n in ids.items() if n > 1]
        if twice:
            problems.append(f"{table}: stored more than once: {twice[:5]}")
        stored[topic] = {r[0]: (r[1], r[2]) for r in rows}
    want_ids: dict[str, set[str]] = {topic: set() for topic in RAW_TABLES}
    good_ids = {orjson.loads(record.value)["event_id"] for record in good_records}
    for record in good_records:
        want_ids[record.topic].add(orjson.loads(record.value)["event_id"])
    for case in accepted:
        want_ids[case.topic].add(case.event["event_id"])
    for topic, ids in want_ids.items():
        extra = set(stored[topic]) - ids
        missing = ids - set(stored[topic])
        good_missing = missing & good_ids
        if good_missing:
            problems.append(f"{topic}: {len(good_missing)} good records not stored, e.g. {sorted(good_missing)[:3]}")
        for case in cases:
            if case.topic == topic and case.outcome in (STORED, LATE) and case.event["event_id"] in missing:
                problems.append(f"{case.name}: not stored")
        if extra:
            leaked = [c.name for c in cases if c.topic == topic and c.outcome not in (STORED, LATE)
                      and _event_id(c) in extra]
            problems.append(f"{topic}: stored what must not be: {leaked or sorted(extra)[:5]}")

    # -- duplicates: the original's row, from the original's offset ----------------------------------
    for case in cases:
        if case.outcome == DUPLICATE:
            original = next(c for c in cases if c.outcome == STORED and c.value == case.value)
            _, partition, offset = where[original.name]
            if stored[case.topic].get(case.event["event_id"]) != (partition, offset):
                problems.append(f"{case.name}: the stored row is not the original's")

    # -- dead letters: one per bad record, with its reason, in the table and on the topic ------------
    letters = client.query("SELECT source_topic, source_partition, source_offset, reason, hex(original), hex(key), "
                           "detail FROM dead_letters").result_rows  # hex: the bytes exactly, UTF-8 or not
    table_letters = {(r[0], r[1], r[2]): r[3] for r in letters}
    letter_rows = {(r[0], r[1], r[2]): r for r in letters}
    if len(table_letters) != len(letters):
        problems.append("dead_letters: several rows for one record")
    topic_letters = {(r["source_topic"], r["source_partition"], r["source_offset"]): r["reason"]
                     for r in read_all(backend.kafka, DEAD_LETTERS, backend.partitions)}
    expected_letters: dict[Position, str] = {}
    for case in cases:
        pos = where[case.name]
        if case.outcome == DEAD:
            expected_letters[pos] = str(case.reason)
            got = table_letters.get(pos)
            if got != case.reason:
                problems.append(f"{case.name}: dead letter {got!r}, want {case.reason!r}")
            if topic_letters.get(pos) != case.reason:
                problems.append(f"{case.name}: on the {DEAD_LETTERS} topic {topic_letters.get(pos)!r}, "
                                f"want {case.reason!r}")
            if pos in letter_rows:
                problems += _letter_problems(case, letter_rows[pos])
        elif pos in table_letters:
            problems.append(f"{case.name}: dead-lettered as {table_letters[pos]!r}, want {case.outcome}")
    good_positions = {pos for (case, _), pos in zip(plan, positions, strict=True) if case is None}
    wrongly = good_positions & set(table_letters)
    if wrongly:
        problems.append(f"{len(wrongly)} good records dead-lettered, e.g. "
                        f"{[table_letters[p] for p in sorted(wrongly)[:3]]}")
    if len(letters) != len(expected_letters):
        problems.append(f"dead_letters: {len(letters)} rows, want {len(expected_letters)}")
    if len(topic_letters) != len(expected_letters):
        problems.append(f"{DEAD_LETTERS} topic: {len(topic_letters)} letters, want {len(expected_letters)}")

    # -- personal data: the CPF and the phone number are nowhere in clear ----------------------------
    for table in [*RAW_TABLES.values(), "dead_letters", "late_events"]:
        for needle in (CPF, PHONE, "ana.silva@example.com", "192.168.10.20"):
            hits = client.query(f"SELECT count() FROM {table} WHERE position(toString(tuple(*)), %(n)s) > 0",
                                parameters={"n": needle}).result_rows[0][0]
            if hits:
                problems.append(f"{table}: {hits} rows hold {needle!r} in clear")
    for _, _, _, _, original, key, _ in letters:
        raw = bytes.fromhex(original) + bytes.fromhex(key or "")
        for needle in (CPF, PHONE, "ana.silva@example.com", "ana@example.com"):
            if needle.encode() in raw:
                problems.append(f"dead_letters: an original holds {needle!r} in clear")

    # -- accepted hostile text is stored exactly, byte for byte --------------------------------------
    texts = dict(client.query("SELECT event_id, text FROM chat_messages").result_rows)
    for case in cases:
        if case.outcome == STORED and case.topic == "chat" and texts.get(case.event["event_id"]) != case.event["text"]:
            problems.append(f"{case.name}: stored text differs from the record's")
    searches = dict(client.query("SELECT event_id, (query, page_url, referrer) FROM clickstream_events "
                                 "WHERE type = 'search'").result_rows)
    for case in cases:
        if case.outcome == STORED and case.event["type"] == "search":
            body = case.event
            if searches.get(body["event_id"]) != (body["query"], body["page_url"], body["referrer"]):
                problems.append(f"{case.name}: stored search differs from the record's")

    # -- late: set aside with its bytes, counted in no window ----------------------------------------
    late_rows = client.query("SELECT event_id, reason, original FROM late_events").result_rows
    want_late = {c.event["event_id"]: c.value for c in cases if c.outcome == LATE}
    got_late = {r[0]: (r[1], r[2]) for r in late_rows}
    if set(got_late) != set(want_late) or len(late_rows) != len(want_late):
        problems.append(f"late_events: {sorted(got_late)}, want {sorted(want_late)}")
    for event_id, value in want_late.items():
        if event_id in got_late and (got_late[event_id][0], _bytes(got_late[event_id][1])) != ("late", value):
            problems.append(f"late_events: {event_id} without its reason or its original bytes")

    # -- profiles: good customers equal the batch computation over the good records only -------------
    result = client.query("SELECT customer_id, features, events_total, as_of, stage, stage_since, segments, "
                          "orders_total, revenue_total FROM customer_profiles FINAL")
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    profiles = {row["customer_id"]: row for row in rows}
    expected = taobao_features(good_path, watermark_ms=newest)
    corpus_customers = {c.event["customer_id"] for c in accepted}
    customers = set(expected.index) | corpus_customers
    if set(profiles) != customers:
        problems.append(f"profiles of customers with no accepted event: {sorted(set(profiles) - customers)[:5]}; "
                        f"missing: {sorted(customers - set(profiles))[:5]}")
    mismatches = differences({c: flat(profiles[c]) for c in expected.index if c in profiles}, expected)
    if mismatches:
        problems.append(f"good customers' profiles: {len(mismatches)} differences, first {mismatches[:3]}")
    for customer in sorted(corpus_customers):
        mine = [c for c in accepted if c.event["customer_id"] == customer]
        events = sum(1 for c in mine if c.outcome == STORED)
        orders = [c.event for c in mine if c.outcome == STORED and c.event["type"] == "order_placed"]
        want = (events, len(orders), sum(o["amount"] for o in orders),
                sum(1 for c in mine if c.outcome == LATE))
        row = profiles.get(customer)
        got = None if row is None else (row["events_total"], row["orders_total"], row["revenue_total"],
                                        flat(row).get("late_events"))
        if got != want:
            problems.append(f"{customer}: (events, orders, revenue, late) {got}, want {want}")

    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


#: The most bytes of a rejected record a dead letter may carry: a Kafka record must stay under 1 MB.
MAX_LETTER_ORIGINAL = 1_000_000


def _letter_problems(case: Case, row: tuple[Any, ...]) -> list[str]:
    """What is wrong with a bad record's dead letter (a row, original and key in hex): it says what failed, and
    keeps the record's bytes (whole when small; a bounded prefix of a huge one; redacted where they held a direct
    identifier)."""
    *_, original, _, detail = row
    kept, value = bytes.fromhex(original), case.value or b""
    problems = [] if detail else [f"{case.name}: dead letter without a detail"]
    if case.reason == CLEAR_IDENTIFIER:
        return problems  # redacted (the personal-data check looks for identifiers in clear)
    if len(value) <= 64 * 1024 and kept != value:
        problems.append(f"{case.name}: dead letter original is not the record's bytes")
    if len(value) > 64 * 1024 and (len(kept) > MAX_LETTER_ORIGINAL or not value.startswith(kept)):
        problems.append(f"{case.name}: dead letter original is {len(kept)} bytes, not a bounded prefix of the record")
    return problems


def _bytes(column: str | bytes | None) -> bytes:
    """A String column as bytes (clickhouse-connect gives str, or bytes where it is not UTF-8)."""
    return column.encode() if isinstance(column, str) else (column or b"")


def _event_id(case: Case) -> str | None:
    try:
        return str(case.event["event_id"])
    except Exception:  # not a JSON object: it has no event id
        return None
