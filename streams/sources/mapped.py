"""Generic replay of any shop's CSV or JSON-lines export, with a column mapping.

The mapping is a string of ``field=Column`` entries naming contract fields and the columns
(CSV header names, or JSON keys; ``a.b`` reaches into a nested object) that fill them, for
example ``customer_id=CustomerID,event_time=InvoiceDate,amount=Price,type=:order_placed``.
A value starting with ``:`` is a constant. ``customer_id``, ``event_time`` and ``type`` are
required; column names cannot contain commas.

- For ``order_placed``, ``product_id``, ``category_id``, ``quantity`` and ``unit_price`` fill
  the one item of ``items`` (a CSV row is one event: an invoice of three lines gives three
  ``order_placed`` events with the same ``order_id``). For other types they fill the
  contract's own fields (``unit_price`` -> ``price`` for product events).
- A field the event's (known) type does not have is left out of that record and counted
  in ``ReplayStats.left_out`` as ``<type>.<field>`` (the row still goes out): one mapping
  can then serve a file that mixes types.
- ``event_id`` defaults to ``derive_event_id(<file stem>, <raw line>, <occurrence>)`` (the
  row's text as in the file, without the line end; a CSV row with a quoted line break spans
  several lines); ``order_id`` of order events defaults to ``<file stem>-order-<hash of the
  event id>``.
- Values are converted to the contract's JSON types where that is lossless ("6" -> 6 for
  integers, "2.55" -> 2.55 for numbers, 17850 -> "17850" for strings; strings are trimmed);
  empty values (``""`` or null) are left out. With ``ReadOptions(decimal=",")`` numbers read
  ``12,50`` and ``1.234,50``.
- Timestamps: the event time column's one format is decided from the whole file before any
  row is read (streams/sources/timeformat.py; ``ReadOptions.time_format`` gives it instead):
  an ambiguous or mixed column is a TimeFormatError. Naive times are in ``tz`` (default UTC);
  everything is converted to UTC.
- CSV dialect (streams/sources/csvfile.py): delimiter sniffed unless given, encoding from the
  BOM or given, UTF-8 by default. A row with fewer or more fields than the header is a dead
  letter the replay sends itself (topic ``dead-letters``, reason ``wrong_field_count``, its
  line in the detail and as ``source_offset``), counted in ``ReplayStats.dead_letters``.

Rows are not validated against the contracts here: ingestion validates every record and
dead-letters the bad ones with the reason. So a row with an unknown type still goes out on
``fallback_topic`` (default "clickstream"), a row whose time cannot be read goes out with
the raw value (sorted last, in file order), a row without customer id goes out with an
empty key, and a JSONL line that is not a JSON object goes out as its raw bytes. The
mapping itself, the time zone, the column names and the time format are checked up front: a
ValueError names the bad part (and the option that fixes it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from schemas.personal import DIRECT_IDENTIFIERS
from schemas.registry import DEAD_LETTERS, INPUT_TOPICS, TOPIC_OF_TYPE
from schemas.validation import dead_letter, dead_letter_id
from streams.sources.csvfile import BadRow, csv_rows
from streams.sources.edge import Pseudonym, clean_body
from streams.sources.record import (
    JSON_OPTIONS,
    Occurrences,
    SourceRecord,
    derive_event_id,
    owned,
    sort_by_event_time,
)
from streams.sources.stats import ReplayStats
from streams.sources.timeformat import as_text, check_rest, decide

ITEM_FIELDS = ("product_id", "category_id", "quantity", "unit_price")
ITEM_KINDS = {"product_id": "string", "category_id": "string", "quantity": "integer", "unit_price": "number"}
REQUIRED = ("event_time", "type")
#: A mapping must give at least one of these (the event's subject; schemas/base.py ``Event``).
SUBJECTS = ("customer_id", "anonymous_id")
#: A number written with a decimal comma (and dots between thousands): ``12,50``, ``-1.234,5``, ``7``.
_DECIMAL_COMMA = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a field's value comes from: a column (or JSON key) of the row, or a constant."""

    column: str | None = None
    constant: str | None = None

    def value(self, row: dict[str, Any]) -> Any:
        """The value for ``row`` (None when the column is absent)."""
        return self.constant if self.column is None else _lookup(row, self.column)


@cache
def contract_fields() -> dict[str, dict[str, str]]:
    """Event type -> {field: JSON type ("string", "integer", "number", "array", ...)} from the contracts."""
    out: dict[str, dict[str, str]] = {}
    for contract in INPUT_TOPICS.values():
        schema = contract.adapter.json_schema()
        definitions = schema.get("$defs", {})
        mapping = schema.get("discriminator", {}).get("mapping")
        models = [definitions[ref.rsplit("/", 1)[-1]] for ref in mapping.values()] if mapping else [schema]
        for model in models:
            properties = model.get("properties", {})
            out[properties["type"]["const"]] = {name: _json_kind(spec) for name, spec in properties.items()}
    return out


@cache
def known_fields() -> frozenset[str]:
    """Every field name a mapping may target."""
    return frozenset(ITEM_FIELDS).union(*contract_fields().values())


def _json_kind(spec: dict[str, Any]) -> str:
    if "type" in spec:
        return str(spec["type"])
    for option in spec.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string" if "enum" in spec or "const" in spec else "other"


#: Other names a mapping may use for a contract field (a shop's export says "timestamp" more often).
ALIASES = {"timestamp": "event_time"}


def parse_mapping(text: str) -> dict[str, Source]:
    """``field=Column,field=:constant,...`` -> {field: Source}; ValueError naming what is wrong."""
    mapping: dict[str, Source] = {}
    fields = known_fields()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        target, sep, source = (s.strip() for s in part.partition("="))
        if not sep or not target or not source:
            raise ValueError(f"mapping entry {part!r} is not field=Column or field=:constant")
        target = ALIASES.get(target, target)
        if target not in fields and target not in DIRECT_IDENTIFIERS:
            raise ValueError(f"mapping names unknown field {target!r}; fields are: {', '.join(sorted(fields))}")
        if target in mapping:
            raise ValueError(f"mapping gives field {target!r} twice")
        if source == ":":
            raise ValueError(f"mapping entry {part!r} has an empty constant")
        mapping[target] = Source(constant=source[1:]) if source.startswith(":") else Source(column=source)
    if not mapping:
        raise ValueError("mapping is empty; expected field=Column entries, e.g. customer_id=CustomerID,...")
    for required in REQUIRED:
        if required not in mapping:
            raise ValueError(f"mapping must give {required!r} (as {required}=Column or {required}=:constant)")
    if not any(subject in mapping for subject in SUBJECTS):
        raise ValueError("mapping must give 'customer_id' or 'anonymous_id' (or both), e.g. customer_id=CustomerID")
    if "items" in mapping and any(f in mapping for f in ITEM_FIELDS):
        raise ValueError(f"mapping gives 'items' and item fields ({', '.join(ITEM_FIELDS)}): choose one")
    return mapping


def zone_of(tz: str) -> ZoneInfo:
    """The time zone named ``tz``; ValueError naming it when unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as UTC or Europe/London)") from None


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read the file: CSV ``delimiter`` (sniffed when None), ``decimal`` mark of numbers, ``encoding``
    (see streams/sources/csvfile.py) and ``time_format`` (decided from the file when None; see timeformat.py)."""

    delimiter: str | None = None
    decimal: str = "."
    encoding: str | None = None
    time_format: str | None = None

    def __post_init__(self) -> None:
        if self.delimiter in ("tab", "\\t"):  # a tab is awkward to type on a command line
            object.__setattr__(self, "delimiter", "\t")
        if self.decimal not in (".", ","):
            raise ValueError(f"--decimal is '.' or ',', not {self.decimal!r}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"--delimiter is one character (e.g. ';' or a tab), not {self.delimiter!r}")


def mapped(path: Path, kind: str, mapping_text: str, tz: str = "UTC", fallback_topic: str = "clickstream",
           stats: ReplayStats | None = None, pseudonym: Pseudonym | None = None,
           options: ReadOptions | None = None) -> list[SourceRecord]:
    """Records for every row of a ``csv`` or ``jsonl`` file, sorted by event time (unreadable times last).

    The event time column's format is decided once, from the whole file (streams/sources/timeformat.py);
    a CSV row with more or fewer fields than the header is a dead letter (topic ``dead-letters``).
    The edge (streams/sources/edge.py): free text is redacted, an email or phone given as
    customer or session id becomes its ``pseudonym``, and direct-identifier columns are dropped.
    """
    if kind not in ("csv", "jsonl"):
        raise ValueError(f"mapped replay reads 'csv' or 'jsonl', not {kind!r}")
    stats = stats if stats is not None else ReplayStats()
    options = options or ReadOptions()
    mapping = parse_mapping(mapping_text)
    zone = zone_of(tz)
    columns = {s.column for s in mapping.values() if s.column is not None}
    time_of = _time_reader(path, kind, mapping["event_time"], columns, options, zone, stats)
    seen_columns: set[str] = set()
    occurrences = Occurrences()
    records: list[SourceRecord] = []
    for content, line, row in _rows(path, kind, columns, options):
        stats.rows += 1
        occurrence = occurrences.next(content)
        if isinstance(row, BadRow):
            stats.dead_letters[row.reason] += 1
            records.append(_dead_letter(_topic_of(mapping, fallback_topic), content, line, occurrence, row))
            continue
        if row is None:  # a JSONL line that is not a JSON object: out as it is, for ingestion to dead-letter
            stats.emitted["(not a json object)"] += 1
            records.append(SourceRecord(fallback_topic, b"", content, None, line))
            continue
        if kind == "jsonl":
            seen_columns.update(c for c in columns if c not in seen_columns and _lookup(row, c) is not None)
        body, when = _body(row, mapping, time_of, options.decimal, stats)
        body.setdefault("event_id", derive_event_id(path.stem, content, occurrence))
        if "order_id" in contract_fields().get(body.get("type", ""), {}):
            body.setdefault("order_id", f"{path.stem}-order-{str(body['event_id']).rsplit('-', 1)[-1]}")
        event_type = body.get("type")
        stats.emitted[event_type if isinstance(event_type, str) else "(no type)"] += 1
        topic = TOPIC_OF_TYPE.get(event_type, fallback_topic) if isinstance(event_type, str) else fallback_topic
        clean_body(body, pseudonym)
        customer = body.get("customer_id") or body.get("anonymous_id")  # an anonymous event: keyed by its visitor
        key = customer.encode() if isinstance(customer, str) else b""
        records.append(SourceRecord(topic, key, owned(orjson.dumps(body, option=JSON_OPTIONS)), when, line))
    if kind == "jsonl" and stats.rows and (missing := sorted(columns - seen_columns)):
        raise ValueError(f"{path}: no line has key {missing[0]!r} (mapped columns: {', '.join(sorted(columns))})")
    return sort_by_event_time(records)


def _rows(path: Path, kind: str, columns: set[str],
          options: ReadOptions) -> Iterator[tuple[bytes, int, dict[str, Any] | BadRow | None]]:
    """(raw text, line number, row) of every row; a row is None for a JSONL line that is not an object."""
    if kind == "csv":
        for row in csv_rows(path, columns, options.delimiter, options.encoding):
            yield row.content, row.line, row.cells
    else:
        yield from _jsonl_rows(path)


def _time_reader(path: Path, kind: str, source: Source, columns: set[str], options: ReadOptions, zone: ZoneInfo,
                 stats: ReplayStats) -> Callable[[Any], datetime | None]:
    """A reader of the event time column, in the one format the file's values show (a TimeFormatError otherwise)."""
    values: dict[str, None] = {}  # distinct, in file order
    if source.column is None:
        values[as_text(source.constant)] = None
    else:
        for _, _, row in _rows(path, kind, columns, options):
            if isinstance(row, dict) and (text := as_text(_lookup(row, source.column))):
                values[text] = None
    name = source.column or "(constant)"
    distinct = list(values)
    chosen = decide(distinct, name, str(path), options.time_format)
    cache: dict[str, datetime | None] = {text: chosen.read(text, zone) for text in distinct}
    unread = [text for text, when in cache.items() if when is None]
    if options.time_format is None:
        check_rest(chosen, unread, name, str(path))
    stats.time_formats[name] = chosen.name

    def read(value: Any) -> datetime | None:
        text = as_text(value)
        return cache[text] if text in cache else chosen.read(text, zone)
    return read


def _topic_of(mapping: dict[str, Source], fallback_topic: str) -> str:
    """The topic rows of this mapping go to when the type is a constant (else the fallback)."""
    constant = mapping["type"].constant
    return TOPIC_OF_TYPE.get(constant, fallback_topic) if constant is not None else fallback_topic


def _dead_letter(topic: str, content: bytes, line: int, occurrence: int, row: BadRow) -> SourceRecord:
    """A dead letter for a row that is not a record (offset: its line number), produced to ``dead-letters``.

    Its id is stable across replays and, like an event id, tells identical rows apart (``occurrence``).
    """
    letter = dead_letter(topic, 0, line, None, content, row.reason, row.detail)
    letter = letter.model_copy(update={"dead_letter_id": dead_letter_id(topic, occurrence.to_bytes(8, "big"),
                                                                        content)})
    return SourceRecord(DEAD_LETTERS, letter.dead_letter_id.encode(),
                        owned(letter.__pydantic_serializer__.to_json(letter)), None, line)


def _body(row: dict[str, Any], mapping: dict[str, Source], time_of: Callable[[Any], datetime | None],
          decimal: str, stats: ReplayStats) -> tuple[dict[str, Any], datetime | None]:
    """The event dict of one row, and its parsed event time (None when unreadable)."""
    type_value = _clean(mapping["type"].value(row))
    event_type = str(type_value) if type_value is not None else None
    fields = contract_fields().get(event_type or "")
    body: dict[str, Any] = {"type": event_type} if event_type is not None else {}
    item: dict[str, Any] = {}
    for target, source in mapping.items():
        if target == "type":
            continue
        if target in DIRECT_IDENTIFIERS:  # read for nothing: a direct identifier never leaves the edge
            stats.left_out[f"personal.{target}"] += 1
            continue
        value = _clean(source.value(row))
        if value is None:
            continue
        if target == "event_time":
            when = time_of(value)
            body["event_time"] = when if when is not None else value
            stats.unreadable_times += when is None
            continue
        if target in ITEM_FIELDS and fields is not None and "items" in fields:
            item[target] = _convert(value, ITEM_KINDS[target], decimal, stats, source)
            continue
        name = "price" if target == "unit_price" and fields is not None and "unit_price" not in fields else target
        if fields is not None and name not in fields:
            stats.left_out[f"{event_type}.{target}"] += 1
            continue
        body[name] = _convert(value, _kind_of(name, fields), decimal, stats, source)
    if item:
        body["items"] = [item]
    when = body.get("event_time")
    return body, when if isinstance(when, datetime) else None


def _kind_of(name: str, fields: dict[str, str] | None) -> str:
    if fields is not None:
        return fields[name]
    for known in contract_fields().values():  # unknown type: the field's type in any contract
        if name in known:
            return known[name]
    return ITEM_KINDS.get(name, "other")


def _convert(value: Any, kind: str, decimal: str = ".", stats: ReplayStats | None = None,
             source: Source | None = None) -> Any:
    """``value`` in the JSON type ``kind`` when the conversion is lossless; otherwise unchanged.

    With ``decimal=","`` a number reads ``12,50`` or ``1.234,50``. A value that only the other decimal
    mark would read is noted in ``stats.hints`` (the run says to pass ``--decimal``).
    """
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and kind in ("integer", "number"):
        text = value
        if decimal == ",":
            text = text.replace(".", "").replace(",", ".") if _DECIMAL_COMMA.fullmatch(text) else ""
        try:
            number = float(text)
        except ValueError:
            if decimal == "." and stats is not None and source is not None and _DECIMAL_COMMA.fullmatch(value):
                stats.hints.setdefault(f"decimal:{source.column}", f"column {source.column!r} has numbers with a "
                                       f"decimal comma (e.g. {value!r}): pass --decimal ,")
            return value
        if kind == "integer":
            return int(number) if number.is_integer() else value
        return number if math.isfinite(number) else value
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _clean(value: Any) -> Any:
    """Strings trimmed; empty strings and nulls as None (absent)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _lookup(row: dict[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    if "." in column:
        node: Any = row
        for part in column.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node
    return None


def _jsonl_rows(path: Path) -> Iterator[tuple[bytes, int, dict[str, Any] | None]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            content = line.rstrip(b"\r\n")
            if not content.strip():
                continue  # a blank line is not a row
            try:
                row = orjson.loads(content)
            except orjson.JSONDecodeError:
                row = None
            yield content, number, row if isinstance(row, dict) else None
