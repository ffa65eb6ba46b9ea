"""Scale-out: two workers of a group share the partitions; one is SIGKILLed in the middle of a replay;
the survivor takes its partitions over; ClickHouse ends with exactly the counts and profiles of the
input (the numbers a single worker gives: tests/integration/test_features_exact.py).

Which groups run two workers depends on the ClickHouse:

- features: two `journey features` processes on both backends; one is killed.
- sink: on a ClickHouse server (containers), two `journey sink` processes; one is killed. On the
  embedded chDB, one: chDB lets one process open a database path, so two sinks cannot write to one
  embedded database, and two databases would not be one result. The sink's own crash and restart is
  covered by test_redelivery.py's SIGKILL test on both backends.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sinks.access import open_reader
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.sources import open_source
from tests.conftest import Backend
from tests.integration.procs import WorkerProcess, topics_read, value, wait_for
from tests.processors.features.compare import differences, flat
from tests.processors.features.reference import taobao_features

pytestmark = pytest.mark.integration

TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "add_to_wishlist", "buy": "order_placed"}
#: Topics each group reads (the inputs, plus every output table's topic for the sink, privacy-requests for features).
SINK_TOPICS, FEATURES_TOPICS = topics_read("sink"), topics_read("features")


def assigned(worker: WorkerProcess) -> float:
    return value(worker.metrics(), "journey_assigned_partitions")


def feed_in_halves(kafka: dict[str, str], records: list[Any], killed: threading.Event, done: threading.Event,
                   errors: list[BaseException], ends: dict[tuple[str, int], int]) -> None:
    """The replay: its first half, then (once the victims are dead) the second; fills ``ends``."""
    from streams.produce import TrackingProducer

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
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": "scale", "JOURNEY_SINK_BATCH_ROWS": "5000",
           "JOURNEY_SINK_BATCH_SECONDS": "0.3", "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.3"}
    sinks_n = 1 if backend.name == "embedded" else 2
    sinks = [WorkerProcess("sink", env, tmp_path / f"sink-{i}.log", f"sink-{i}") for i in range(sinks_n)]
    features = [WorkerProcess("features", env, tmp_path / f"features-{i}.log", f"features-{i}") for i in range(2)]
    everyone = [*sinks, *features]
    killed, feeder_done, feeder_errors, ends = threading.Event(), threading.Event(), [], {}  # type: ignore[var-annotated]
    try:
        for group in (sinks, features):  # partitions shared: every member owns some, together all of them
            wait_for(lambda g=group: all(w.ready() and assigned(w) > 0 for w in g)
                     and sum(assigned(w) for w in g)
                     == (SINK_TOPICS if g is sinks else FEATURES_TOPICS) * backend.partitions,
                     "the partitions shared", 90, everyone)

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
