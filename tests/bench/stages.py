"""Stage processes the harness starts: ``produce``, ``consume``, ``hotpath``, ``count``, ``features-memory``.

Each reads the saved workload, does one job, and writes its measurements as JSON.
Run as ``python -m tests.bench.stages STAGE ...`` (the harness does this).
"""

from __future__ import annotations

import argparse
import gc
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.settings import Settings
from tests.bench.procs import self_peak_rss_mb
from tests.bench.workload import load

#: Pass 1 works in the sink's own batches (its default ``sink_batch_rows``); pass 2 inserts 10k-row tables.
SINK_BATCH_ROWS: int = Settings.model_fields["sink_batch_rows"].default
INSERT_BATCH_ROWS = 10_000
FLOOR_SAMPLE = 50_000
INSERT_ROUNDS = 3


def _write(path: Path, result: dict[str, Any]) -> None:
    result["process_cpu"] = time.process_time()  # the whole process, so the harness can tell other load apart
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    tmp.replace(path)


def produce(workload: Path, bootstrap: str, out: Path) -> None:
    """Send every record with the project's TrackingProducer; time from the first send to the last ack."""
    from plumbing.produce import TrackingProducer

    work = load(workload)
    producer = TrackingProducer({"bootstrap.servers": bootstrap})
    send = producer.send_raw
    first_send = time.time()
    started, cpu0 = time.perf_counter(), time.process_time()
    for topic, key, value in work.records:
        send(topic, key, value)
    producer.flush(120)
    seconds = time.perf_counter() - started
    _write(out, {
        "first_send": first_send, "seconds": seconds, "delivered": dict(producer.delivered),
        "end_offsets": [[t, p, o] for (t, p), o in sorted(producer.end_offsets.items())],
        "peak_rss_mb": self_peak_rss_mb(), "cpu_seconds": time.process_time() - cpu0,
    })


def consume(bootstrap: str, produced: Path, out: Path) -> None:
    """confluent-kafka alone with the sink's consumer settings: read the backlog, touch each record, no work."""
    from confluent_kafka import Consumer

    from plumbing.batch_worker import consumer_config
    from sinks.ingest import SinkConfig

    ends = {(t, p): o for t, p, o in orjson.loads(produced.read_bytes())["end_offsets"]}
    total = sum(ends.values())
    config = SinkConfig(group_id="bench-consume-only")
    consumer = Consumer(consumer_config({"bootstrap.servers": bootstrap}, config.group_id))
    consumer.subscribe(list(config.topics))
    count, first, deadline = 0, 0.0, time.monotonic() + 120
    cpu0 = 0.0
    try:
        while count < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"consume: only {count:,} of {total:,} records within 120s")
            for msg in consumer.consume(config.batch_rows, 0.2):
                if msg.error() is not None:
                    continue
                if not first:
                    first, cpu0 = time.perf_counter(), time.process_time()
                msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()
                count += 1
        seconds = time.perf_counter() - first
        cpu = time.process_time() - cpu0
    finally:
        consumer.close()
    _write(out, {"events": count, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": self_peak_rss_mb()})


def hotpath(workload: Path, db: Path, out: Path) -> None:
    """The sink's per-event work measured in-process: validate, Arrow build, insert (and 10k-row insert rate)."""
    from schemas.validation import Limits, Rejected, dead_letter, validate
    from sinks.batches import Staged, dead_letters_table, events_table
    from sinks.client import DEAD_LETTER_TABLE, RAW_INSERT_SETTINGS, RAW_TABLES, apply_schema, connect

    work = load(workload)
    gc.freeze()  # the sink never holds the whole workload: keep its records out of the collector's scans
    client = connect(f"chdb://{db}")
    apply_schema(client)
    limits = Limits()
    spent: defaultdict[str, float] = defaultdict(float)
    rejections: Counter[str] = Counter()
    calls: list[tuple[str, int, float]] = []  # every insert_arrow call of pass 1: table, rows, seconds
    carry = Staged()  # clickstream events not yet in a 10k-row table for pass 2
    tables: list[Any] = []  # pass 2's tables, built as pass 1 goes so no Python objects pile up (GC cost)
    sink_tables: list[Any] = []  # pass 1's clickstream tables: the inserts the sink makes, at its batch size
    perf = time.perf_counter
    # Pass 1: the sink's work per batch (its default size) over the whole mix, each step timed apart.
    for start in range(0, work.total, SINK_BATCH_ROWS):
        batch = work.records[start:start + SINK_BATCH_ROWS]
        now = datetime.now(UTC)
        pending: dict[str, Staged] = defaultdict(Staged)
        letters = []
        t0 = perf()
        for offset, (topic, key, value) in enumerate(batch, start):
            t = perf()
            try:
                event = validate(topic, value, key, limits, now)
            except Rejected as rejected:
                spent[f"rejected:{rejected.reason}"] += perf() - t
                rejections[rejected.reason] += 1
                letters.append(dead_letter(topic, 0, offset, key, value, rejected.reason, rejected.detail, now))
                continue
            pending[topic].add(event, 0, offset)
        t1 = perf()
        spent["validate"] += t1 - t0
        for topic, accepted in pending.items():
            t1 = perf()
            table = events_table(topic, accepted, now)
            t2 = perf()
            client.insert_arrow(RAW_TABLES[topic], table, settings=RAW_INSERT_SETTINGS)
            t3 = perf()
            if topic == "clickstream":
                sink_tables.append(table)
            spent["arrow"] += t2 - t1
            spent["insert"] += t3 - t2
            calls.append((RAW_TABLES[topic], table.num_rows, t3 - t2))
        t3 = perf()
        if letters:
            letters_table = dead_letters_table(letters)
            t4 = perf()
            client.insert_arrow(DEAD_LETTER_TABLE, letters_table)
            calls.append((DEAD_LETTER_TABLE, letters_table.num_rows, perf() - t4))
        spent["dead_letters"] += perf() - t3
        clicks = pending.get("clickstream", Staged())
        for event, partition, offset in zip(clicks.events, clicks.partitions, clicks.offsets, strict=True):
            carry.add(event, partition, offset)
            if len(carry) >= INSERT_BATCH_ROWS:
                tables.append(events_table("clickstream", carry, now))
                carry = Staged()
        del pending, letters, batch
    floors = _floors(work.records[:FLOOR_SAMPLE])
    stored = {table: client.command(f"SELECT count() FROM {table}") for table in
              (*RAW_TABLES.values(), DEAD_LETTER_TABLE)}
    # Pass 2: the insert step alone into clickstream_events (table + every materialized view), as the
    # sink makes it (the clickstream rows of each of its batches) and in 10k-row batches (the least a
    # batch may hold). Rounds into an emptied table; the median round is reported (the machine is noisy).
    if not tables and carry:
        tables.append(events_table("clickstream", carry, datetime.now(UTC)))
    del carry
    sink_insert = _insert_rounds(client, sink_tables)
    small_insert = _insert_rounds(client, tables)
    rollups = _rollup_costs(client, tables)
    _write(out, {
        "events": work.total, "batch_rows": SINK_BATCH_ROWS, "seconds": dict(spent),
        "rejections": dict(rejections), "stored": stored,
        **{f"sink_insert_{k}": v for k, v in sink_insert.items()},
        **{f"insert_{k}": v for k, v in small_insert.items()},
        "floors_us": floors, "insert_calls": calls, "peak_rss_mb": self_peak_rss_mb(), "rollups": rollups,
    })


def _insert_rounds(client: Any, tables: list[Any], table: str = "clickstream_events") -> dict[str, Any]:
    """INSERT_ROUNDS rounds of ``tables`` into an emptied ``table`` (with its views), with the sink's
    insert settings: rows, batches, the median round's seconds (and per batch), every round's seconds."""
    from sinks.client import RAW_INSERT_SETTINGS

    rounds = []
    for _ in range(INSERT_ROUNDS):
        client.command(f"TRUNCATE TABLE {table}")
        times = []
        for arrow in tables:
            t0 = time.perf_counter()
            client.insert_arrow(table, arrow, settings=RAW_INSERT_SETTINGS)
            times.append(time.perf_counter() - t0)
        rounds.append(times)
    rounds.sort(key=sum)
    median = rounds[len(rounds) // 2]
    return {"rows": sum(t.num_rows for t in tables), "batches": len(tables), "seconds": sum(median),
            "batch_seconds": median, "round_seconds": [sum(r) for r in rounds]}


def _rollup_costs(client: Any, tables: list[Any]) -> dict[str, float]:
    """Insert seconds of the 10k-row clickstream batches into a bare copy of the raw table, alone and
    with each of the raw table's materialized views attached one at a time (to copies of their targets).

    Says what each rollup costs the sink per row, measured in the same database and the same run.
    """
    bare = "bench_clickstream_bare"
    client.command(f"CREATE TABLE {bare} AS clickstream_events")
    costs = {"(raw table alone)": _insert_rounds(client, tables, bare)["seconds"]}
    from sinks.rebuild import view_targets

    target_of = view_targets(client)
    views = client.query("SELECT name, as_select FROM system.tables "
                         "WHERE database = currentDatabase() AND engine = 'MaterializedView'").result_rows
    for name, select in sorted(views):
        if not re.search(r"\bFROM\s+(\w+\.)?clickstream_events\b", select):
            continue
        client.command(f"CREATE TABLE bench_rollup_target AS {target_of[name]}")
        copied = re.sub(r"\bFROM\s+(\w+\.)?clickstream_events\b", f"FROM {bare}", select)
        client.command(f"CREATE MATERIALIZED VIEW bench_rollup_mv TO bench_rollup_target AS {copied}")
        try:
            costs[name] = _insert_rounds(client, tables, bare)["seconds"]
        finally:
            client.command("DROP VIEW bench_rollup_mv")
            client.command("DROP TABLE bench_rollup_target")
    client.command(f"DROP TABLE {bare}")
    return costs


def _floors(records: list[tuple[str, bytes, bytes]]) -> dict[str, float]:
    """Microseconds per record for JSON decoding alone (orjson) and for the contract's validate_json alone."""
    from pydantic import ValidationError

    from schemas.registry import INPUT_TOPICS

    perf = time.perf_counter
    t0 = perf()
    for _, _, value in records:
        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to what is measured
            orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    t1 = perf()
    adapters = {topic: contract.adapter for topic, contract in INPUT_TOPICS.items()}
    for topic, _, value in records:
        try:  # noqa: SIM105 - as above
            adapters[topic].validate_json(value)
        except ValidationError:
            pass
    t2 = perf()
    n = max(len(records), 1)
    return {"orjson_loads": 1e6 * (t1 - t0) / n, "validate_json": 1e6 * (t2 - t1) / n, "sample": len(records)}


def count(dsn: str, out: Path) -> None:
    """What the sink stored: rows and distinct ids per table, types, rollup totals, dead-letter reasons."""
    from sinks.client import DEAD_LETTER_TABLE, RAW_TABLES, connect

    client = connect(dsn)
    tables = {}
    for topic, table in RAW_TABLES.items():
        rows, distinct = client.query(f"SELECT count(), uniqExact(event_id) FROM {table}").result_rows[0]
        types = dict(client.query(f"SELECT type, count() FROM {table} GROUP BY type").result_rows)
        tables[topic] = {"table": table, "rows": rows, "distinct_ids": distinct, "types": types}
    rows, distinct = client.query(
        f"SELECT count(), uniqExact(dead_letter_id) FROM {DEAD_LETTER_TABLE}").result_rows[0]
    reasons = dict(client.query(f"SELECT reason, count() FROM {DEAD_LETTER_TABLE} GROUP BY reason").result_rows)
    by_topic = dict(client.query(
        f"SELECT source_topic, count() FROM {DEAD_LETTER_TABLE} GROUP BY source_topic").result_rows)
    rollup = client.command("SELECT sum(events) FROM events_per_minute")
    _write(out, {"tables": tables, "dead_letters": {"rows": rows, "distinct_ids": distinct, "reasons": reasons,
                                                    "by_topic": by_topic}, "rollup_events": int(rollup or 0)})


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def features_memory(customers: int, events: int, out: Path) -> None:
    """Hold the profiles of ``customers`` in one process: resident memory and pickled state per customer.

    Also times the features processor alone (no Kafka): the domain logic's own cost per event.
    """
    import pickle

    from processors.features.build import build_features
    from tests.bench.workload import generate

    work = generate(events, seed=11, customers=customers, invalid_ratio=0.0)
    processor = build_features()
    new_state, process = processor.new_state, processor.process
    gc.collect()
    rss0 = _rss_mb()
    states: dict[bytes, Any] = {}
    started = time.perf_counter()
    for topic, key, value in work.records:
        state = states.get(key)
        if state is None:
            state = states[key] = new_state(key.decode())
        process(state, topic, value, key)
    process_seconds = time.perf_counter() - started
    started = time.perf_counter()
    profiles = sum(len(v) for state in states.values() for _, _, v in processor.emit(state.customer_id, state))
    emit_seconds = time.perf_counter() - started
    gc.collect()
    rss1 = _rss_mb()
    pickled = sum(len(pickle.dumps(state, pickle.HIGHEST_PROTOCOL)) for state in states.values())
    held = len(states)
    distinct = len({key for _, key, _ in work.records})
    _write(out, {"customers": held, "distinct_customers": distinct, "events": len(work.records), "rss_mb": rss1 - rss0,
                 "mb_per_100k": (rss1 - rss0) * 100_000 / max(held, 1), "pickled_bytes": pickled / max(held, 1),
                 "profile_bytes": profiles / max(held, 1), "process_us": 1e6 * process_seconds / len(work.records),
                 "emit_us": 1e6 * emit_seconds / max(held, 1), "invalid": processor.invalid})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.stages")
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--workload", type=Path, required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--out", type=Path, required=True)
    h = sub.add_parser("hotpath")
    h.add_argument("--workload", type=Path, required=True)
    h.add_argument("--db", type=Path, required=True)
    h.add_argument("--out", type=Path, required=True)
    k = sub.add_parser("consume")
    k.add_argument("--bootstrap", required=True)
    k.add_argument("--produced", type=Path, required=True)
    k.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("count")
    c.add_argument("--dsn", required=True)
    c.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("features-memory")
    m.add_argument("--customers", type=int, required=True)
    m.add_argument("--events", type=int, required=True)
    m.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.stage == "features-memory":
        features_memory(args.customers, args.events, args.out)
    elif args.stage == "produce":
        produce(args.workload, args.bootstrap, args.out)
    elif args.stage == "consume":
        consume(args.bootstrap, args.produced, args.out)
    elif args.stage == "hotpath":
        hotpath(args.workload, args.db, args.out)
    else:
        count(args.dsn, args.out)


if __name__ == "__main__":
    main()
