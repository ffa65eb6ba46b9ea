"""Rows of ``identity_merges`` (every identity link, merge and refusal: an analyst's audit of the graph)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from sinks.batches import S, _ms, _timestamps, _ts


def identity_merges_table(records: Sequence[dict[str, Any]], emitted_at: datetime) -> pa.Table:
    """Rows of ``identity_merges`` from ``identity-merges`` records (``schemas.identity.IdentityMerge``)."""
    return pa.table({
        "record_id": pa.array([r["record_id"] for r in records], S),
        "action": pa.array([r["action"] for r in records], S),
        "reason": pa.array([r["reason"] for r in records], S),
        "from_kind": pa.array([r["from_kind"] for r in records], S),
        "from_id": pa.array([r["from_id"] for r in records], S),
        "into_id": pa.array([r["into_id"] for r in records], S),
        "event_id": pa.array([r["event_id"] for r in records], S),
        "event_time": _ts([_ms(r["event_time"]) for r in records]),
        "emitted_at": _timestamps([emitted_at] * len(records)),
    })


def identity_of(reader: Any, customer_id: str) -> dict[str, Any]:
    """A customer's identifiers and merge history from ``identity_merges`` (``journey identity ID``).

    ``merged_into``: the customer this id was merged into, if it was (look that one up for the
    person's whole history); ``identifiers``: every identifier linked to it; ``history``: every
    record about it, oldest first (links, merges in and out, refusals), and at one event time the
    links before the merges they cause: the stage records them in either order, depending on
    whether the visitor already had a profile when the link arrived.
    """
    _, rows = reader.rows(
        "SELECT record_id, action, reason, from_kind, from_id, into_id, event_id, event_time FROM identity_merges "
        "FINAL WHERE into_id = {id:String} OR from_id = {id:String} ORDER BY event_time, action, record_id",
        {"id": customer_id})
    names = ("record_id", "action", "reason", "from_kind", "from_id", "into_id", "event_id", "event_time")
    history = [dict(zip(names, row, strict=True)) for row in rows]
    for record in history:
        record["event_time"] = record["event_time"].isoformat()
    merged_into = next((r["into_id"] for r in reversed(history)
                        if r["action"] == "merged" and r["from_id"] == customer_id), None)
    identifiers = sorted({(r["from_kind"], r["from_id"]) for r in history
                          if r["action"] == "linked" and r["into_id"] == customer_id})
    return {"customer_id": customer_id, "merged_into": merged_into,
            "identifiers": [{"kind": kind, "id": value} for kind, value in identifiers], "history": history}
