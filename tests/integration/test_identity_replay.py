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

from tests.integration.test_cli_run import journey, rows

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


@pytest.mark.parametrize("paced", [False, True])
def test_anonymous_views_fold_into_the_customer_when_identify_arrives(tmp_path: Path, paced: bool) -> None:
    """Replayed at once, the stages may read the identify (or the merge) before a-1's views (other partitions,
    other topics): then the views go to c-1 at once and a-1 never has a profile of its own. Paced (one event
    every 5 s), a-1's views are profiled first: then a-1's profile is folded into c-1 and retired."""
    path = tmp_path / "journey.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in LINES))
    pacing = ["--speedup", "12"] if paced else []
    run = journey("run", "--replay", f"jsonl:{path}", "--map", MAPPING, *pacing, cwd=tmp_path, timeout=900)
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
    assert anonymous == retired if paced else anonymous in ([], retired), anonymous
    profiles = rows(tmp_path, "SELECT customer_id FROM customer_profiles FINAL WHERE merged_into IS NULL")
    assert profiles == [{"customer_id": "c-1"}]

    merges = rows(tmp_path, "SELECT action, reason, from_kind, from_id, into_id FROM identity_merges FINAL "
                            "ORDER BY action")
    linked = {"action": "linked", "reason": "identify", "from_kind": "anonymous_id", "from_id": "a-1", "into_id": "c-1"}
    assert merges == ([linked, {**linked, "action": "merged"}] if anonymous else [linked])
    identity = journey("identity", "c-1", "--format", "json", cwd=tmp_path)
    assert identity.returncode == 0, identity.stderr[-2000:]
    found = json.loads(identity.stdout)
    assert found["identifiers"] == [{"kind": "anonymous_id", "id": "a-1"}]
    assert [r["action"] for r in found["history"]] == [m["action"] for m in merges]
    if anonymous:
        assert json.loads(journey("identity", "a-1", "--format", "json", cwd=tmp_path).stdout)["merged_into"] == "c-1"
    stored = rows(tmp_path, "SELECT count() AS n FROM clickstream_events")
    assert stored == [{"n": 6}]  # the raw events are stored as they came (anonymous ones under a-1)
