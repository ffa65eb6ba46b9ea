"""`journey identity ID` on a real embedded database: a customer's identifiers and history in a fixed order."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.scratch_db import make_database
from tests.streams.test_query_command import journey

COLUMNS = "record_id, action, reason, from_kind, from_id, into_id, event_id, event_time, emitted_at"


def test_history_lists_the_link_before_the_merge_it_caused_whichever_the_stage_recorded_first(tmp_path: Path) -> None:
    # The identify of a visitor who already had a profile: the stage records the merge (#0), then the link (#1).
    rows = [("ev-9#0", "merged", "anonymous_id", "a-1", "c-1"), ("ev-9#1", "linked", "anonymous_id", "a-1", "c-1"),
            ("ev-1#0", "linked", "email_hash", "e-1", "c-1")]
    values = ", ".join(f"('{rid}', '{action}', 'identify', '{kind}', '{src}', '{into}', '{rid[:4]}', "
                       f"'{'2026-03-01 10:03:00' if rid.startswith('ev-9') else '2026-03-01 09:00:00'}', now64(3))"
                       for rid, action, kind, src, into in rows)
    data = make_database(tmp_path, f"INSERT INTO identity_merges ({COLUMNS}) VALUES {values}")
    shown = journey(data, "identity", "c-1", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    found = orjson.loads(shown.stdout)
    assert [(r["action"], r["from_id"]) for r in found["history"]] == [("linked", "e-1"), ("linked", "a-1"),
                                                                        ("merged", "a-1")]
    assert found["identifiers"] == [{"kind": "anonymous_id", "id": "a-1"}, {"kind": "email_hash", "id": "e-1"}]
    visitor = orjson.loads(journey(data, "identity", "a-1", "--format", "json").stdout)
    assert visitor["merged_into"] == "c-1"
