"""Identity resolution from `journey run --replay`: an anonymous visitor's events fold into the customer.

The issue's example: three product views by anonymous visitor a-1, an identify linking a-1 to c-1,
two product views by c-1. The profile of c-1 counts all five; a-1's only profile says it was merged
into c-1; the merge is in identity_merges and `journey identity` shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from sinks.access import open_reader
from tests.conftest import Backend, produce
from tests.integration.identity_workers import identity_env, settle, start_workers, wait_live
from tests.integration.procs import WorkerProcess
from tests.integration.test_cli_run import journey, rows
from tests.integration.test_scoring_pipeline import read_all

pytestmark = pytest.mark.integration

MAPPING = "customer_id=customer_id,anonymous_id=anonymous_id,event_time=ts,type=type,product_id=product_id"
LINES = [
    {"anonymous_id": "a-1", "ts": "2026-03-01T10:00:00Z", "type": "product_view", "product_id": "p1"},
    {"anonymous_id": "a-1", "ts": "2026-03-01T10:01:00Z", "type": "product_view", "product_id": "p2"},
    {"anonymous_id": "a-1", "ts": "2026-03-01T10:02:00Z", "type": "product_view", "product_id": "p3"},
    {"anonymous_id": "a-1", "customer_id": "c-1", "ts": "2026-03-01T10:03:00Z", "type": "identify"},
    {"customer_id": "c-1", "ts": "2026-03-01T10:04:00Z", "type": "product_view", "product_id": "p1"},
    {"customer_id": "c-1", "ts": "2026-03-01T10:05:00Z", "type": "product_view", "product_id": "p4"},
]


def test_anonymous_views_fold_into_the_customer_when_identify_arrives(tmp_path: Path) -> None:
    """The issue's command. Replayed at once, the stages may read the identify (or the merge) before a-1's
    views (other partitions, other topics): then the views go to c-1 at once and a-1 never has a profile
    of its own; else a-1's profile is folded into c-1 and retired. Either way c-1 counts all five views
    (the fold route itself, deterministically: the staged test below)."""
    path = tmp_path / "journey.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in LINES))
    run = journey("run", "--replay", f"jsonl:{path}", "--map", MAPPING, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    shown = journey("customer", "c-1", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    profile = json.loads(shown.stdout)
    assert profile["features"]["product_views_total"] == 5
    assert profile["features"]["first_seen_ms"] == 1772359200000  # 2026-03-01T10:00Z, a-1's first view
    assert profile["events_total"] == 5

    anonymous = rows(tmp_path, "SELECT customer_id, merged_into, events_total FROM customer_profiles FINAL "
                               "WHERE customer_id = 'a-1'")
    retired = [{"customer_id": "a-1", "merged_into": "c-1", "events_total": 3}]
    assert anonymous in ([], retired), anonymous
    profiles = rows(tmp_path, "SELECT customer_id FROM customer_profiles FINAL WHERE merged_into IS NULL")
    assert profiles == [{"customer_id": "c-1"}]

    merges = rows(tmp_path, "SELECT action, reason, from_kind, from_id, into_id FROM identity_merges FINAL "
                            "ORDER BY action")
    linked = {"action": "linked", "reason": "identify", "from_kind": "anonymous_id", "from_id": "a-1", "into_id": "c-1"}
    assert merges == [linked, {**linked, "action": "merged"}]  # a-1 is retired even if it had no profile yet
    identity = journey("identity", "c-1", "--format", "json", cwd=tmp_path)
    assert identity.returncode == 0, identity.stderr[-2000:]
    found = json.loads(identity.stdout)
    assert found["identifiers"] == [{"kind": "anonymous_id", "id": "a-1"}]
    assert [r["action"] for r in found["history"]] == [m["action"] for m in merges]
    if anonymous:
        assert json.loads(journey("identity", "a-1", "--format", "json", cwd=tmp_path).stdout)["merged_into"] == "c-1"
    stored = rows(tmp_path, "SELECT count() AS n FROM clickstream_events")
    assert stored == [{"n": 6}]  # the raw events are stored as they came (anonymous ones under a-1)


def _records(lines: list[dict[str, object]]) -> list[tuple[str, bytes | None, bytes | None]]:
    """The contract events of ``lines`` (as the mapped replay makes them), keyed by customer or visitor."""
    out: list[tuple[str, bytes | None, bytes | None]] = []
    for n, line in enumerate(lines):
        body = {k: v for k, v in line.items() if k != "ts"} | {"event_id": f"ev-{line['ts']}-{n}",
                                                                "event_time": line["ts"]}
        key = str(body.get("customer_id") or body["anonymous_id"]).encode()
        out.append(("clickstream", key, orjson.dumps(body)))
    return out


def test_the_fold_route_through_real_workers_with_the_identity_stage_sigkilled_between(backend: Backend,
                                                                                       tmp_path: Path) -> None:
    """a-1's views are profiled first (the stage and features catch up), the identity stage is SIGKILLed and
    restarted (its graph comes back from the changelog), then the identify and c-1's views: a-1's profile
    is folded into c-1 and retired, on the topic and in ClickHouse."""
    env, dsn = identity_env(backend, tmp_path, "ident")
    workers = start_workers(env, tmp_path)
    try:
        wait_live(workers)
        produce(backend.kafka, _records(LINES[:3]))
        settle(backend.kafka, "ident", workers)
        profiles = {p["customer_id"]: p for p in read_all(backend.kafka, "customer-features", backend.partitions)}
        assert profiles["a-1"]["features"]["product_views_total"] == 3 and "c-1" not in profiles

        workers["identity-stage"].kill()
        workers["identity-stage"] = WorkerProcess("identity-stage", env, tmp_path / "identity-stage-2.log")
        produce(backend.kafka, _records(LINES[3:]))
        settle(backend.kafka, "ident", workers)
        latest: dict[str, dict[str, object]] = {}
        for p in read_all(backend.kafka, "customer-features", backend.partitions):
            latest[p["customer_id"]] = p
        assert latest["c-1"]["features"]["product_views_total"] == 5  # type: ignore[index]
        assert latest["c-1"]["events_total"] == 5 and latest["c-1"].get("merged_into") is None
        assert latest["a-1"]["merged_into"] == "c-1"
        assert latest["a-1"]["as_of"] == "2026-03-01T10:03:00Z"  # the identify's time: a newer version
        with open_reader(dsn, tmp_path, direct=False) as reader:  # embedded: through the sink that owns it
            stored = reader.rows("SELECT customer_id, merged_into, events_total FROM customer_profiles FINAL "
                                 "ORDER BY customer_id")[1]
            merges = reader.rows("SELECT action, from_id, into_id FROM identity_merges FINAL ORDER BY action")[1]
    finally:
        codes = {role: worker.stop() for role, worker in workers.items()}
    assert set(codes.values()) == {0}, {r: workers[r].log_tail() for r, c in codes.items() if c}
    assert [tuple(r) for r in stored] == [("a-1", "c-1", 3), ("c-1", None, 5)]
    assert [tuple(r) for r in merges] == [("linked", "a-1", "c-1"), ("merged", "a-1", "c-1")]


def _view(customer: str | None, anonymous: str | None, day: int, n: int, **extra: str) -> tuple[str, bytes, bytes]:
    """A product view (or, with ``type``, another clickstream event) on March ``day`` at 10:00."""
    body = {"event_id": f"late-{n}", "event_time": f"2026-03-{day:02d}T10:00:00Z",
            **({"type": "product_view", "product_id": "p1"} if "type" not in extra else {}),
            **({"customer_id": customer} if customer else {}), **({"anonymous_id": anonymous} if anonymous else {}),
            **extra}
    return "clickstream", str(customer or anonymous).encode(), orjson.dumps(body)


def test_events_rekeyed_days_behind_the_customer_count_and_a_claimed_origin_does_not(backend: Backend,
                                                                                       tmp_path: Path) -> None:
    """Issue 22's lateness defect, deterministically: c-1 is linked to a-1 and has views up to March 10; then a-1's
    views of March 2 and 3 arrive, re-keyed onto c-1 by the stage, days behind c-1's newest (1 h lateness): counted,
    checked against a-1's own stream. A view of c-1's own of March 1 claiming ``resolved_from`` is late all the
    same (the stage removes the claim)."""
    env, _ = identity_env(backend, tmp_path, "origin")
    workers = start_workers(env, tmp_path)
    try:
        wait_live(workers)
        produce(backend.kafka, [_view("c-1", None, 9, 1), _view("c-1", "a-1", 10, 2, type="identify"),
                                _view("c-1", None, 10, 3)])
        settle(backend.kafka, "origin", workers)
        produce(backend.kafka, [_view(None, "a-1", 2, 4), _view(None, "a-1", 3, 5),
                                _view("c-1", None, 1, 6, resolved_from="x-9")])
        settle(backend.kafka, "origin", workers)
        resolved: dict[str, set[tuple[str, str | None]]] = {}
        for r in read_all(backend.kafka, "identified-clickstream", backend.partitions):
            subject = r.get("customer_id") or r["anonymous_id"]  # an anonymous event keeps its own form
            resolved.setdefault(r["event_id"], set()).add((subject, r.get("resolved_from")))
        late = read_all(backend.kafka, "late-events", backend.partitions)
        latest: dict[str, dict[str, object]] = {}
        for p in read_all(backend.kafka, "customer-features", backend.partitions):
            latest[p["customer_id"]] = p
    finally:
        codes = {role: worker.stop() for role, worker in workers.items()}
    assert set(codes.values()) == {0}, {r: workers[r].log_tail() for r, c in codes.items() if c}
    assert latest["c-1"]["features"]["product_views_total"] == 4  # type: ignore[index]
    assert (latest["c-1"]["events_total"], latest["c-1"]["features"]["late_events"]) == (4, 1)  # type: ignore[index]
    assert [(r["event_id"], r["newest_event_time"]) for r in late] == [("late-6", "2026-03-10T10:00:00Z")]
    # a-1 is retired into c-1 when linked (graph: every linked visitor id is), so its later events go through
    # its retired state (Resolution.via), which forwards them to c-1 with their origin.
    assert resolved == {
        "late-1": {("c-1", None)}, "late-3": {("c-1", None)}, "late-4": {("a-1", None), ("c-1", "a-1")},
        "late-5": {("a-1", None), ("c-1", "a-1")}, "late-6": {("c-1", None)}}
    assert "a-1" not in latest  # linked before any event of its own: no profile of its own to emit
