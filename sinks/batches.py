"""Turning accepted events into Arrow tables, one per ClickHouse raw table.

Columns are built column-wise from the validated contract instances (no per-row
dicts), which is what keeps the sink's per-event cost in the microseconds.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any

import pyarrow as pa

from processors.sentiment import sentiment
from schemas.outputs import DeadLetter

TIMESTAMP = pa.timestamp("ms", tz="UTC")


@dataclass(slots=True)
class Staged:
    """Accepted events of one topic awaiting their insert, kept as columns: each event and where it came from.

    The sink appends to the three lists in its per-record loop; that costs less than making a
    row object per event, and the Arrow build wants columns anyway.
    """

    events: list[Any] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    hashes: list[int] = field(default_factory=list)  # content_hash of each event's record bytes

    def add(self, event: Any, partition: int, offset: int, digest: int = 0) -> None:
        self.events.append(event)
        self.partitions.append(partition)
        self.offsets.append(offset)
        self.hashes.append(digest)

    def __len__(self) -> int:
        return len(self.events)

    def by_class(self) -> dict[type, Staged]:
        """The events split by class (each msgspec class has its own fields), order kept within a class."""
        classes = list(map(type, self.events))
        kinds = set(classes)
        if len(kinds) == 1:
            return {classes[0]: self}
        index: dict[type, list[int]] = {kind: [] for kind in kinds}
        for i, kind in enumerate(classes):
            index[kind].append(i)
        groups = {}
        for kind, rows in index.items():
            if len(rows) == 1:
                (i,) = rows
                groups[kind] = Staged([self.events[i]], [self.partitions[i]], [self.offsets[i]], [self.hashes[i]])
            else:
                pick = itemgetter(*rows)
                groups[kind] = Staged(list(pick(self.events)), list(pick(self.partitions)), list(pick(self.offsets)),
                                      list(pick(self.hashes)))
        return groups


#: A column read from the events' field dicts (``None`` name: computed by ``compute``).
@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: pa.DataType
    compute: Callable[[Staged], list[Any]] | None = None


def _items(attr: str) -> Callable[[Staged], list[Any]]:
    return lambda group: [[getattr(item, attr) for item in getattr(e, "items", None) or ()] for e in group.events]


def _customer_sentiment(group: Staged) -> list[float | None]:
    return [sentiment(e.text) if e.sender_role == "customer" else None for e in group.events]


def _plain(*fields: tuple[str, pa.DataType]) -> list[Column]:
    return [Column(name, dtype) for name, dtype in fields]


S, F, U32 = pa.string(), pa.float64(), pa.uint32()
_ENVELOPE = _plain(("event_id", S), ("customer_id", S), ("anonymous_id", S), ("event_time", TIMESTAMP), ("type", S))
_SOURCE = [
    Column("schema_version", pa.uint8()),
    Column("source_partition", pa.uint16(), lambda group: group.partitions),
    Column("source_offset", pa.uint64(), lambda group: group.offsets),
    Column("content_hash", pa.uint64(), lambda group: group.hashes),
]

#: topic -> the columns of its raw table, in table order.
COLUMNS: dict[str, list[Column]] = {
    "clickstream": _ENVELOPE + _plain(
        ("session_id", S), ("channel", S), ("device", S), ("page_url", S), ("referrer", S),
        ("utm_source", S), ("utm_medium", S), ("utm_campaign", S), ("time_zone", S), ("product_id", S),
        ("category_id", S), ("brand", S), ("price", F), ("currency", S), ("quantity", U32), ("query", S),
        ("results", U32), ("cart_value", F), ("items", U32),
    ) + _SOURCE,
    "orders": _ENVELOPE + _plain(
        ("order_id", S), ("currency", S), ("amount", F), ("freight", F), ("channel", S), ("session_id", S),
        ("payment_type", S), ("installments", pa.uint16()), ("reason", S),
    ) + [
        Column("item_product_ids", pa.list_(S), _items("product_id")),
        Column("item_category_ids", pa.list_(S), _items("category_id")),
        Column("item_quantities", pa.list_(U32), _items("quantity")),
        Column("item_unit_prices", pa.list_(F), _items("unit_price")),
    ] + _SOURCE,
    "chat": _ENVELOPE + _plain(
        ("conversation_id", S), ("sender_role", S), ("channel", S), ("text", S), ("language", S),
        ("rating", pa.uint8()), ("in_reply_to", S),
    ) + [Column("sentiment", pa.float32(), _customer_sentiment)] + _SOURCE,
    "consent": _ENVELOPE + _plain(("channel", S), ("status", S), ("purpose", S), ("source", S), ("time_zone", S))
    + _SOURCE,
}


def warm_up() -> None:
    """Initialise pyarrow's timestamp and time-zone machinery (~0.2 s on first use), before the first batch needs it."""
    _timestamps([datetime.fromtimestamp(0, UTC)])


def _timestamps(values: list[datetime]) -> pa.Array:
    # Aware datetimes convert ~50x faster through epoch milliseconds than directly.
    return pa.array([round(v.timestamp() * 1000) for v in values], pa.int64()).cast(TIMESTAMP)


def events_table(topic: str, staged: Staged, ingested_at: datetime) -> pa.Table:
    """The Arrow table of the ``staged`` events for ``topic``'s raw table.

    Events are grouped by class; a msgspec class's columns are read with ``attrgetter`` mapped
    in C over the group (no Python-level loop per event); pydantic models (inputs only pydantic
    accepted, rare) are read with getattr.
    """
    if not staged:
        return pa.table({c.name: pa.array([], c.dtype) for c in COLUMNS[topic]} | {"ingested_at": _timestamps([])})
    parts = [_group_table(topic, cls, group) for cls, group in staged.by_class().items()]
    table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    stamp = _timestamps([ingested_at])
    return table.append_column("ingested_at", stamp.take(pa.array([0] * table.num_rows)))


def _group_table(topic: str, cls: type, group: Staged) -> pa.Table:
    events = group.events
    fields: tuple[str, ...] | None = getattr(cls, "__struct_fields__", None)
    arrays: dict[str, pa.Array] = {}
    for column in COLUMNS[topic]:
        name = column.name
        if column.compute:
            values: Any = column.compute(group)
        elif fields is None or name in fields:
            values = list(map(attrgetter(name), events)) if fields else [getattr(e, name, None) for e in events]
        elif name == "type":  # a tagged msgspec class carries its type as a class attribute
            values = [cls.type] * len(events)  # type: ignore[attr-defined]
        else:
            arrays[name] = pa.nulls(len(events), column.dtype)
            continue
        arrays[name] = _timestamps(values) if column.dtype == TIMESTAMP else pa.array(values, column.dtype)
    return pa.table(arrays)


def dead_letters_table(letters: Sequence[DeadLetter]) -> pa.Table:
    """The Arrow table for ``dead_letters``; key and original are stored decoded (raw bytes)."""
    originals = [base64.b64decode(d.original) for d in letters]
    return pa.table({
        "dead_letter_id": pa.array([d.dead_letter_id for d in letters], S),
        "source_topic": pa.array([d.source_topic for d in letters], S),
        "source_partition": pa.array([d.source_partition for d in letters], pa.uint16()),
        "source_offset": pa.array([d.source_offset for d in letters], pa.uint64()),
        "reason": pa.array([d.reason for d in letters], S),
        "detail": pa.array([d.detail for d in letters], S),
        "key": pa.array([base64.b64decode(d.key) if d.key is not None else None for d in letters], pa.binary()),
        "original": pa.array(originals, pa.binary()),
        "received_at": _timestamps([d.received_at for d in letters]),
        # A letter written before these fields existed carried its original whole.
        "original_length": pa.array([len(o) if d.original_length is None else d.original_length
                                     for d, o in zip(letters, originals, strict=True)], pa.uint64()),
        "original_sha256": pa.array([hashlib.sha256(o).hexdigest() if d.original_sha256 is None
                                     else d.original_sha256 for d, o in zip(letters, originals, strict=True)], S),
        "truncated": pa.array([d.truncated for d in letters], pa.bool_()),
    })


def _ms(value: str | None) -> int | None:
    if value is None:
        return None
    return round(datetime.fromisoformat(value).timestamp() * 1000)


def _ts(values: list[int | None]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(TIMESTAMP)


def profiles_table(records: Sequence[dict[str, Any]], emitted_at: datetime) -> pa.Table:
    """Rows of ``customer_profile_history`` from ``customer-features`` records."""
    import orjson

    features = [r["features"] for r in records]
    return pa.table({
        "customer_id": pa.array([r["customer_id"] for r in records], S),
        "as_of": _ts([_ms(r["as_of"]) for r in records]),
        "events_total": pa.array([r["events_total"] for r in records], pa.uint64()),
        "stage": pa.array([r.get("stage") or "" for r in records], S),
        "stage_since": _ts([_ms(r.get("stage_since")) for r in records]),
        "segments": pa.array([r.get("segments", []) for r in records], pa.list_(S)),
        "last_seen": _ts([_ms(r.get("last_seen")) for r in records]),
        "orders_total": pa.array([f.get("orders_total") or 0 for f in features], pa.uint32()),
        "revenue_total": pa.array([f.get("revenue_total") or 0.0 for f in features], F),
        "cart_value": pa.array([f.get("cart_value") or 0.0 for f in features], F),
        "features": pa.array([orjson.dumps(f).decode() for f in features], S),
        "emitted_at": _timestamps([emitted_at] * len(records)),
        "merged_into": pa.array([r.get("merged_into") for r in records], S),
    })


def late_events_table(records: Sequence[dict[str, Any]], received_at: datetime) -> pa.Table:
    """Rows of ``late_events`` from ``late-events`` records."""
    return pa.table({
        "event_id": pa.array([r["event_id"] for r in records], S),
        "customer_id": pa.array([r["customer_id"] for r in records], S),
        "source_topic": pa.array([r["source_topic"] for r in records], S),
        "event_time": _ts([_ms(r["event_time"]) for r in records]),
        "newest_event_time": _ts([_ms(r["newest_event_time"]) for r in records]),
        "allowed_lateness_s": pa.array([r["allowed_lateness_s"] for r in records], F),
        "processor": pa.array([r["processor"] for r in records], S),
        "received_at": _timestamps([received_at] * len(records)),
        "reason": pa.array([r.get("reason", "late") for r in records], S),
        "original": pa.array([base64.b64decode(r.get("original") or "") for r in records], pa.binary()),
    })
