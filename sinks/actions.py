"""Arrow rows of the trigger, guard-decision, message and delivery tables, from their topics' records.

The records are written by our own processors (already valid contracts), so they are read as
dicts. Every table is a ReplacingMergeTree on the record's derived id: a record produced again
(after a restart or a redelivery) collapses into the one stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from sinks.batches import _ms, _timestamps, _ts

S, B = pa.string(), pa.bool_()
Records = Sequence[dict[str, Any]]


def _col(records: Records, name: str, dtype: pa.DataType = S, default: Any = None) -> pa.Array:
    return pa.array([r.get(name, default) for r in records], dtype)


def _times(records: Records, name: str) -> pa.Array:
    return _ts([_ms(r.get(name)) for r in records])


def _stamp(records: Records, at: datetime) -> pa.Array:
    return _timestamps([at] * len(records))


def triggers_table(records: Records, emitted_at: datetime) -> pa.Table:
    """Rows of ``triggers`` from ``triggers`` records."""
    return pa.table({
        "trigger_id": _col(records, "trigger_id"), "customer_id": _col(records, "customer_id"),
        "trigger": _col(records, "trigger"), "fired_at": _times(records, "fired_at"),
        "fired_by": _col(records, "fired_by", default="event"), "service": _col(records, "service", B, False),
        "reason": _col(records, "reason"), "source_event_id": _col(records, "source_event_id"),
        "products": _col(records, "products", pa.list_(S), []),
        "context": pa.array([orjson.dumps(r.get("context") or {}).decode() for r in records], S),
        "history": pa.array([orjson.dumps(r["history"]).decode() if r.get("history") else None for r in records], S),
        "emitted_at": _stamp(records, emitted_at),
    })


def decisions_table(records: Records, emitted_at: datetime) -> pa.Table:
    """Rows of ``guard_decisions`` from ``message-decisions`` records."""
    return pa.table({
        "decision_id": _col(records, "decision_id"), "trigger_id": _col(records, "trigger_id"),
        "customer_id": _col(records, "customer_id"), "trigger": _col(records, "trigger"),
        "guard": _col(records, "guard"), "outcome": _col(records, "outcome"), "channel": _col(records, "channel"),
        "decided_at": _times(records, "decided_at"), "deferred_until": _times(records, "deferred_until"),
        "detail": _col(records, "detail", default=""), "message_id": _col(records, "message_id"),
        "emitted_at": _stamp(records, emitted_at),
    })


def messages_table(records: Records, emitted_at: datetime) -> pa.Table:
    """Rows of ``messages`` from ``messages`` records."""
    return pa.table({
        "message_id": _col(records, "message_id"), "trigger_id": _col(records, "trigger_id"),
        "customer_id": _col(records, "customer_id"), "trigger": _col(records, "trigger"),
        "channel": _col(records, "channel"), "template": _col(records, "template"),
        "locale": _col(records, "locale", default="en"), "subject": _col(records, "subject"),
        "title": _col(records, "title"), "body": _col(records, "body"), "send_at": _times(records, "send_at"),
        "deferred": _col(records, "deferred", B, False), "service": _col(records, "service", B, False),
        "recommendations": _col(records, "recommendations", pa.list_(S), []),
        "emitted_at": _stamp(records, emitted_at),
    })


def deliveries_table(records: Records, emitted_at: datetime) -> pa.Table:
    """Rows of ``deliveries`` from ``deliveries`` records."""
    return pa.table({
        "delivery_id": _col(records, "delivery_id"), "message_id": _col(records, "message_id"),
        "trigger_id": _col(records, "trigger_id"), "customer_id": _col(records, "customer_id"),
        "trigger": _col(records, "trigger"), "channel": _col(records, "channel"), "adapter": _col(records, "adapter"),
        "status": _col(records, "status"), "attempts": _col(records, "attempts", pa.uint16()),
        "delivered_at": _times(records, "delivered_at"), "detail": _col(records, "detail", default=""),
        "emitted_at": _stamp(records, emitted_at),
    })
