"""Generic replay of any shop's CSV or JSON-lines export, with a column mapping.

The mapping names contract fields and the columns that fill them, for example
``customer_id=CustomerID,event_time=InvoiceDate,amount=Price,type=:order_placed``; a
value starting with ``:`` is a constant. For orders, ``product_id``, ``category_id``,
``quantity`` and ``unit_price`` fill one item. ``event_id`` defaults to an id derived
from the file and the row, ``order_id`` to one derived from the event id.

Rows are not validated here: ingestion validates every record and dead-letters the bad
ones with the reason, so a row with an unknown type or an unreadable time still goes out
(on the topic of its type, or ``fallback_topic``). Timestamps are read as ISO 8601,
unix seconds, or ``%m/%d/%Y %H:%M``, ``%d/%m/%Y %H:%M``, ``%Y-%m-%d %H:%M:%S``; naive ones
in ``tz``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from schemas.registry import INPUT_TOPICS, TOPIC_OF_TYPE
from streams.sources.record import Occurrences, SourceRecord, derive_event_id
from streams.sources.stats import ReplayStats

ITEM_FIELDS = ("product_id", "category_id", "quantity", "unit_price")
_FORMATS = ("%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S")


def known_fields() -> set[str]:
    fields: set[str] = set(ITEM_FIELDS)
    for contract in INPUT_TOPICS.values():
        schema = contract.adapter.json_schema()
        for definition in [schema, *schema.get("$defs", {}).values()]:
            fields.update(definition.get("properties", {}))
    return fields


def parse_mapping(text: str) -> dict[str, tuple[str, str]]:
    """field -> ("column", name) or ("constant", value); ValueError naming what is wrong."""
    mapping: dict[str, tuple[str, str]] = {}
    fields = known_fields()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        target, sep, source = part.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ValueError(f"mapping entry {part!r} is not field=Column or field=:constant")
        if target not in fields:
            raise ValueError(f"mapping names unknown field {target!r}; fields are: {', '.join(sorted(fields))}")
        mapping[target] = ("constant", source[1:]) if source.startswith(":") else ("column", source)
    for required in ("customer_id", "event_time", "type"):
        if required not in mapping:
            raise ValueError(f"mapping must give {required!r}")
    return mapping


def parse_time(value: Any, zone: ZoneInfo) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _rows(path: Path, kind: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
    if kind == "jsonl":
        with path.open("rb") as handle:
            for line in handle:
                if line.strip():
                    yield line.rstrip(b"\n"), orjson.loads(line)
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        for row in reader:
            yield ",".join(row).encode(), dict(zip(header, row, strict=False))


def mapped(path: Path, kind: str, mapping_text: str, tz: str = "UTC", fallback_topic: str = "clickstream",
           stats: ReplayStats | None = None) -> list[SourceRecord]:
    """Records for every row, sorted by event time (rows with an unreadable time last, in file order)."""
    stats = stats or ReplayStats()
    mapping = parse_mapping(mapping_text)
    zone = ZoneInfo(tz)
    occurrences = Occurrences()
    records: list[SourceRecord] = []
    checked = False
    for content, row in _rows(path, kind):
        if not checked:
            missing = [c for how, c in mapping.values() if how == "column" and c not in row]
            if missing and kind == "csv":
                raise ValueError(f"{path}: no column {missing[0]!r}; columns are: {', '.join(row)}")
            checked = True
        stats.rows += 1
        body: dict[str, Any] = {}
        item: dict[str, Any] = {}
        for target, (how, source) in mapping.items():
            value = source if how == "constant" else row.get(source)
            (item if target in ITEM_FIELDS else body)[target] = value
        when = parse_time(body.get("event_time"), zone)
        if when is not None:
            body["event_time"] = when.isoformat().replace("+00:00", "Z")
        body.setdefault("event_id", derive_event_id(path.stem, content, occurrences.next(content)))
        kind_of = str(body.get("type") or "")
        if kind_of.startswith("order_"):
            body.setdefault("order_id", f"order-{body['event_id']}")
            if item:
                body["items"] = [{k: _number(k, v) for k, v in item.items() if v not in (None, "")}]
            if "amount" in body:
                body["amount"] = _number("amount", body["amount"])
        elif item:
            body.update({k: _number(k, v) for k, v in item.items() if k != "unit_price"})
        customer = str(body.get("customer_id") or "")
        stats.emitted[kind_of or "(no type)"] += 1
        records.append(SourceRecord(TOPIC_OF_TYPE.get(kind_of, fallback_topic), customer.encode(),
                                    orjson.dumps(body), when))
    records.sort(key=lambda r: (r.event_time is None, r.event_time or datetime.min.replace(tzinfo=UTC)))
    return records


def _number(field: str, value: Any) -> Any:
    """Numbers for numeric fields when they read as numbers; anything else is left for validation to judge."""
    if field not in ("quantity", "unit_price", "amount", "price") or not isinstance(value, str):
        return value
    try:
        return int(value) if field == "quantity" else float(value)
    except ValueError:
        return value
