"""`journey privacy export` and `erase` cover the whole person: the anonymous ids linked to them, the identity
graph's changelog, the merge history in `identity_merges` and the retired anonymous profile.

Anonymous visitor a-1 is profiled, then identified as c-1 (a-1's profile folded into c-1 and retired); a-2 and
c-2 do the same and must keep everything. The export of c-1 lists a-1, the merge rows and the graph component;
after `journey privacy erase c-1` nothing of c-1 or a-1 is left in the identity changelog, the features
changelog, `identity_merges`, `customer_profiles` or the raw tables, and c-2's history is intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.identity import IDENTIFIED_TOPICS, PROFILE_HANDOFFS
from schemas.registry import IDENTITY_MERGES, INPUT_TOPICS
from sinks.access import open_reader
from streams.privacy import identity_components
from streams.topics import ensure_topics, topic_specs
from tests.conftest import Backend, produce
from tests.integration.procs import WorkerProcess, caught_up, status, wait_for
from tests.integration.test_identity_replay import _records
from tests.integration.test_privacy import latest, read_topic, states

pytestmark = pytest.mark.integration

PREFIX = "idpriv"


def _visits(anonymous: str, customer: str, day: int) -> list[dict[str, object]]:
    views = [{"anonymous_id": anonymous, "ts": f"2026-03-0{day}T10:0{n}:00Z", "type": "product_view",
              "product_id": f"p{n}"} for n in range(3)]
    return [*views, {"anonymous_id": anonymous, "customer_id": customer, "ts": f"2026-03-0{day}T10:03:00Z",
                     "type": "identify"},
            {"customer_id": customer, "ts": f"2026-03-0{day}T10:04:00Z", "type": "product_view", "product_id": "p9"}]


def _journey(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=900)


def test_export_lists_and_erase_removes_every_linked_id_merge_row_and_graph_entry(backend: Backend,
                                                                                   tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'db'}" if backend.name == "embedded" else backend.dsn
    env = {"JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"], "JOURNEY_CLICKHOUSE_DSN": dsn,
           "JOURNEY_DATA_DIR": str(tmp_path), "JOURNEY_GROUP_PREFIX": PREFIX, "JOURNEY_SINK_BATCH_SECONDS": "0.2",
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2", "JOURNEY_PRIVACY_WAIT_SECONDS": "20",
           "JOURNEY_TOPIC_PARTITIONS": str(backend.partitions)}
    ensure_topics(backend.kafka, topic_specs(backend.partitions, PREFIX), 1)
    first, second = _visits("a-1", "c-1", 1), _visits("a-2", "c-2", 2)
    roles = ("sink", "identity-stage", "features")
    workers = {role: WorkerProcess(role, env, tmp_path / f"{role}.log") for role in roles}
    watched = list(workers.values())
    features_topics = [*sorted(IDENTIFIED_TOPICS), IDENTITY_MERGES, PROFILE_HANDOFFS]
    identity_log, features_log = f"{PREFIX}-identity-changelog", f"{PREFIX}-features-changelog"

    def settle() -> None:
        caught_up(backend.kafka, f"{PREFIX}-identity", list(INPUT_TOPICS), watched, 300)
        for _ in range(3):  # the features worker feeds two of its own inputs (handoffs, forwarded events)
            caught_up(backend.kafka, f"{PREFIX}-features", features_topics, watched, 300)
        caught_up(backend.kafka, f"{PREFIX}-sink", ["customer-features", IDENTITY_MERGES, *INPUT_TOPICS], watched,
                  300)

    def held(sql: str) -> list[tuple[Any, ...]]:
        with open_reader(dsn, tmp_path, direct=False) as reader:  # embedded: through the sink that owns it
            return [tuple(r) for r in reader.rows(sql)[1]]

    def graph_holds(ids: set[str]) -> list[dict[str, Any]]:
        return identity_components(backend.kafka, identity_log, ids)

    try:
        wait_for(lambda: all(status(f"{w.url}/healthz") == 200 for w in watched), "live workers", 120, watched)
        produce(backend.kafka, _records(first[:3] + second[:3]))
        settle()  # a-1 and a-2 are profiled on their own first: the identify then folds and retires them
        produce(backend.kafka, _records(first[3:] + second[3:]))
        settle()
        assert held("SELECT customer_id, merged_into, events_total FROM customer_profiles FINAL "
                    "ORDER BY customer_id") == [("a-1", "c-1", 3), ("a-2", "c-2", 3), ("c-1", None, 4),
                                                ("c-2", None, 4)]

        out = tmp_path / "c-1.json"
        exported = _journey(env, tmp_path, "privacy", "export", "c-1", "--out", str(out))
        assert exported.returncode == 0, exported.stderr[-3000:]
        document = orjson.loads(out.read_bytes())
        assert sorted(document["linked_identifiers"]) == ["a-1"]
        assert sorted((r["action"], r["from_id"], r["into_id"]) for r in document["clickhouse"]["identity_merges"]) \
            == [("linked", "a-1", "c-1"), ("merged", "a-1", "c-1")]
        (component,) = document["processor_state"]["identity"]
        assert component["profile"] == "c-1"
        assert sorted(component["members"]) == ["anonymous_id:a-1", "customer_id:c-1"]
        anonymous = document["linked_identifiers"]["a-1"]
        assert {(r["merged_into"], r["events_total"]) for r in anonymous["clickhouse"]["customer_profiles"]} >= \
            {("c-1", 3)}
        assert len(anonymous["clickhouse"]["clickstream_events"]) == 3  # its views (the identify is stored under c-1)
        assert "features" in anonymous["processor_state"]  # the retired profile's state

        erased = _journey(env, tmp_path, "privacy", "erase", "c-1")
        assert erased.returncode == 0, erased.stderr[-3000:]
        reports = [orjson.loads(line) for line in erased.stdout.splitlines()]
        assert len(reports) == 2 and reports[1]["linked_to"] == reports[0]["subject"]
        assert reports[0]["clickhouse_rows_deleted"]["identity_merges"] == 2
        assert reports[1]["clickhouse_rows_deleted"]["customer_profiles"] >= 1

        # The identity stage and the features worker apply the requests (the other groups do not run here).
        wait_for(lambda: not graph_holds({"c-1", "a-1"}), "the identity graph to drop c-1", 300, watched)
        wait_for(lambda: not {"a-1", "c-1"} & set(states(read_topic(backend.kafka, features_log, backend.partitions))),
                 "the features worker to drop c-1 and a-1", 300, watched)
        (kept,) = graph_holds({"c-2"})
        assert sorted(kept["members"]) == ["anonymous_id:a-2", "customer_id:c-2"]
        assert {"a-2", "c-2"} <= set(states(read_topic(backend.kafka, features_log, backend.partitions)))
        audits = [orjson.loads(v) for _, v in read_topic(backend.kafka, "privacy-audit", backend.partitions)]
        assert [(a["subject"], a["rows"]) for a in audits if a["location"] == "identity" and a["rows"]] == \
            [(reports[0]["subject"], 1)]

        ids = "('a-1', 'c-1')"
        assert held(f"SELECT count() FROM identity_merges WHERE from_id IN {ids} OR into_id IN {ids}") == [(0,)]
        assert held(f"SELECT count() FROM customer_profiles WHERE customer_id IN {ids}") == [(0,)]
        assert held(f"SELECT count() FROM clickstream_events WHERE customer_id IN {ids}") == [(0,)]
        assert held("SELECT action, from_id, into_id FROM identity_merges FINAL ORDER BY action") == \
            [("linked", "a-2", "c-2"), ("merged", "a-2", "c-2")]
        assert held("SELECT customer_id, merged_into FROM customer_profiles FINAL ORDER BY customer_id") == \
            [("a-2", "c-2"), ("c-2", None)]
        assert held("SELECT count() FROM clickstream_events") == [(5,)]
        compacted = latest(read_topic(backend.kafka, "customer-features", backend.partitions))
        assert compacted.get(b"c-1", b"") is None and compacted.get(b"a-1", b"") is None  # tombstoned
    finally:
        codes = {role: worker.stop() for role, worker in workers.items()}
    assert set(codes.values()) == {0}, {r: workers[r].log_tail() for r, c in codes.items() if c}
