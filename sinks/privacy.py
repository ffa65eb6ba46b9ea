"""Erasure, export, retention and the audit of data rights in ClickHouse.

Everything goes through a :class:`~sinks.access.Reader` (streams/query.py ``reader``), which
reaches the embedded database through the sink that owns it while the pipeline runs, and
opens it directly when nothing runs: so ClickHouse is handled at once either way.

Which tables hold a customer is read from ClickHouse itself (every MergeTree-family table
with a ``customer_id`` column), so a table added later (the scoring processor's) is erased
and exported without a change here. Rows are removed by a synchronous mutation
(``ALTER TABLE ... DELETE ... SETTINGS mutations_sync = 2``), which rewrites the affected
parts. Dead letters are matched by their record key or by the customer id in their
original bytes (``"customer_id": "<id>"``, any spacing), both stored raw. Rollups that
aggregate many customers (counts and sums per minute, day, channel or category; distinct-customer
sketches) keep their numbers: they are anonymous statistics, and the erased customer cannot be
taken out of a merged state.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from sinks.access import Reader
from sinks.actions import _col, _times
from sinks.client import DEAD_LETTER_TABLE

AUDIT_TABLE = "privacy_audit"
SUPPRESSIONS_TABLE = "privacy_suppressions"
#: The identity stage's links and merges: a customer's rows are those naming them on either side.
IDENTITY_TABLE = "identity_merges"
_IDENTITY_MATCH = "(from_id = {c:String} OR into_id = {c:String})"
#: A dead letter about a customer: keyed by their id, or with their id as ``customer_id`` in its original.
#: ``key`` and ``original`` are stored as the raw bytes (``sinks.batches.dead_letters_table``), not base64.
_DEAD_LETTER_MATCH = "(key = {key:String} OR match(original, {pattern:String}))"
#: The characters a (RE2) pattern treats specially: escaped to match themselves.
_RE2_SPECIAL = re.compile(r"[\\.+*?()|\[\]{}^$]")


def customer_tables(reader: Reader) -> list[str]:
    """Every table (not view) with a ``customer_id`` column: the tables that hold per-customer rows."""
    _, rows = reader.rows(
        "SELECT c.table FROM system.columns AS c INNER JOIN system.tables AS t "
        "ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = currentDatabase() AND c.name = 'customer_id' AND t.engine LIKE '%MergeTree' "
        "ORDER BY c.table")
    return [str(r[0]) for r in rows]


def _has_identity_merges(reader: Reader) -> bool:
    _, rows = reader.rows("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
                          {"t": IDENTITY_TABLE})
    return bool(rows[0][0])


def linked_ids(reader: Reader, customer_id: str) -> list[str]:
    """Every id linked to ``customer_id`` in ``identity_merges``, transitively (its anonymous ids and other
    identifiers, customers merged into it by alias and theirs; sorted, the customer left out).

    The identity stage links an identifier by a ``linked`` record (``from_id`` into the profile) and retires a
    profile by a ``merged`` one: following both from the customer reaches the whole person.
    """
    if not _has_identity_merges(reader):
        return []
    seen, frontier = {customer_id}, [customer_id]
    while frontier:
        _, rows = reader.rows(f"SELECT DISTINCT from_id FROM {IDENTITY_TABLE} WHERE into_id IN {{ids:Array(String)}} "
                              "AND action IN ('linked', 'merged')", {"ids": frontier})
        frontier = [str(r[0]) for r in rows if str(r[0]) not in seen]
        seen.update(frontier)
    return sorted(seen - {customer_id})


def _dead_letter_parameters(customer_id: str) -> dict[str, str]:
    """The key and the pattern of :data:`_DEAD_LETTER_MATCH`: ``"customer_id"``, any spacing, the id as JSON text."""
    quoted = _RE2_SPECIAL.sub(r"\\\g<0>", json.dumps(customer_id, ensure_ascii=False))
    return {"key": customer_id, "pattern": rf'"customer_id"\s*:\s*{quoted}'}


def holdings(reader: Reader, customer_id: str) -> dict[str, int]:
    """Rows per table that hold ``customer_id`` (tables with none left out)."""
    return holdings_of(reader, [customer_id])[customer_id]


def holdings_of(reader: Reader, customer_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per customer, rows per table that hold them (tables with none left out): one query per table."""
    found: dict[str, dict[str, int]] = {c: {} for c in customer_ids}
    for table in customer_tables(reader):
        _, rows = reader.rows(f"SELECT customer_id, count() FROM `{table}` WHERE customer_id IN {{ids:Array(String)}} "
                              "GROUP BY customer_id", {"ids": list(found)})
        for customer, n in rows:
            found[str(customer)][table] = int(n)
    for customer in found:
        n = int(reader.rows(f"SELECT count() FROM {DEAD_LETTER_TABLE} WHERE {_DEAD_LETTER_MATCH}",
                            _dead_letter_parameters(customer))[1][0][0])
        if n:
            found[customer][DEAD_LETTER_TABLE] = n
    if _has_identity_merges(reader):
        for customer in found:
            query = f"SELECT count() FROM {IDENTITY_TABLE} WHERE {_IDENTITY_MATCH}"
            n = int(reader.rows(query, {"c": customer})[1][0][0])
            if n:
                found[customer][IDENTITY_TABLE] = n
    return found


def _audit(reader: Reader, request_id: str, subject: str, action: str, location: str, rows: int,
           detail: str) -> None:
    reader.arrow(f"INSERT INTO {AUDIT_TABLE} (request_id, subject, action, location, rows, detail, completed_at) "
                 "SELECT {r:String}, {s:String}, {a:String}, {l:String}, {n:UInt64}, {d:String}, now64(3, 'UTC')",
                 {"r": request_id, "s": subject, "a": action, "l": location, "n": rows, "d": detail})


@dataclass(frozen=True)
class Erasure:
    """One erasure request: the customer, their HMAC (what the audit and suppression list keep) and its id."""

    customer_id: str
    subject: str
    request_id: str = field(default_factory=lambda: f"pr-{uuid.uuid4().hex}")


def _delete(reader: Reader, found: dict[str, dict[str, int]]) -> None:
    """Delete the rows ``found`` (per customer, per table): one synchronous mutation per table for all."""
    tables = sorted({table for held in found.values() for table in held} - {DEAD_LETTER_TABLE, IDENTITY_TABLE})
    for table in tables:
        ids = [c for c, held in found.items() if table in held]
        reader.arrow(f"ALTER TABLE `{table}` DELETE WHERE customer_id IN {{ids:Array(String)}} "
                     "SETTINGS mutations_sync = 2", {"ids": ids})
    for customer, held in found.items():
        if DEAD_LETTER_TABLE in held:
            reader.arrow(f"ALTER TABLE `{DEAD_LETTER_TABLE}` DELETE WHERE {_DEAD_LETTER_MATCH} "
                         "SETTINGS mutations_sync = 2", _dead_letter_parameters(customer))
    ids = [c for c, held in found.items() if IDENTITY_TABLE in held]
    if ids:
        reader.arrow(f"ALTER TABLE {IDENTITY_TABLE} DELETE WHERE from_id IN {{ids:Array(String)}} "
                     "OR into_id IN {ids:Array(String)} SETTINGS mutations_sync = 2", {"ids": ids})


def erase_many(reader: Reader, requests: Sequence[Erasure]) -> dict[str, dict[str, int]]:
    """Delete every row of each customer (tables and dead letters), suppress, audit: one mutation per table for all.

    A synchronous mutation costs about a second on the embedded database whatever it deletes,
    so a queue of erasure requests is handled in one pass rather than one per customer.
    Returns the rows removed per table, per customer.
    """
    found = holdings_of(reader, [r.customer_id for r in requests])
    _delete(reader, found)
    left = holdings_of(reader, [r.customer_id for r in requests])  # counted again: the audit says what remains
    for request in requests:
        held = found[request.customer_id]
        remaining = left[request.customer_id]
        where = "".join(f", {t}: {n}" for t, n in sorted(remaining.items()))
        reader.arrow(f"INSERT INTO {SUPPRESSIONS_TABLE} (subject, request_id, erased_at) "
                     "SELECT {s:String}, {r:String}, now64(3, 'UTC')",
                     {"s": request.subject, "r": request.request_id})
        for table, n in sorted(held.items()):
            _audit(reader, request.request_id, request.subject, "erase", f"clickhouse:{table}", n,
                   "rows deleted (synchronous mutation)")
        _audit(reader, request.request_id, request.subject, "erase", "clickhouse:*", sum(held.values()),
               f"tables checked: every table with customer_id, and {DEAD_LETTER_TABLE}; rows left: "
               f"{sum(remaining.values())}{where}; on the suppression list")
    return found


def sweep(reader: Reader, requests: Sequence[Erasure]) -> dict[str, dict[str, int]]:
    """The second pass of an erasure made while the pipeline runs: delete (and audit) what landed since the first.

    Records about the customer that were on their way when the first pass ran (events the sink
    had not stored yet, outputs a processor made before it applied the request) are stored
    after it; once the sink has caught up with them this removes them. Returns what it deleted.
    """
    found = holdings_of(reader, [r.customer_id for r in requests])
    _delete(reader, found)
    for request in requests:
        for table, n in sorted(found[request.customer_id].items()):
            _audit(reader, request.request_id, request.subject, "erase", f"clickhouse:{table}", n,
                   "rows stored after the first pass (in flight at the request) deleted")
    return found


def suppressed_subjects(reader: Reader) -> list[str]:
    """The erased-ids suppression list (HMACs)."""
    return [str(r[0]) for r in reader.rows(f"SELECT DISTINCT subject FROM {SUPPRESSIONS_TABLE} ORDER BY subject")[1]]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def export(reader: Reader, customer_id: str, subject: str) -> dict[str, list[dict[str, Any]]]:
    """Every row held about ``customer_id`` in ClickHouse, per table (dead letters with their original as text)."""
    held: dict[str, list[dict[str, Any]]] = {}
    for table in customer_tables(reader):
        _, types = reader.rows("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                               "AND table = {t:String} ORDER BY position", {"t": table})
        select = ", ".join(f"finalizeAggregation(`{name}`) AS `{name}`" if str(kind).startswith("AggregateFunction")
                           else f"`{name}`" for name, kind in types)
        columns, rows = reader.rows(f"SELECT {select} FROM `{table}` WHERE customer_id = {{c:String}}",
                                    {"c": customer_id})
        if rows:
            held[table] = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    columns, rows = reader.rows(f"SELECT * FROM {DEAD_LETTER_TABLE} WHERE {_DEAD_LETTER_MATCH}",
                                _dead_letter_parameters(customer_id))
    if rows:
        held[DEAD_LETTER_TABLE] = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    if _has_identity_merges(reader):
        columns, rows = reader.rows(f"SELECT * FROM {IDENTITY_TABLE} FINAL WHERE {_IDENTITY_MATCH} "
                                    "ORDER BY event_time, record_id", {"c": customer_id})
        if rows:
            held[IDENTITY_TABLE] = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    columns, rows = reader.rows(f"SELECT * FROM {AUDIT_TABLE} WHERE subject = {{s:String}} ORDER BY completed_at",
                                {"s": subject})
    if rows:
        held[AUDIT_TABLE] = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return held


def write_export(path: Path, customer_id: str, subject: str, clickhouse: dict[str, list[dict[str, Any]]],
                 processors: dict[str, Any], linked: dict[str, Any] | None = None) -> None:
    """The export file: the customer, when, and everything held (ClickHouse rows, processor state); ``linked``:
    the same for each id linked to the customer (``linked_ids``: anonymous ids, other identifiers)."""
    document = {"customer_id": customer_id, "exported_at": datetime.now(UTC).isoformat(),
                "clickhouse": clickhouse, "processor_state": _plain(processors),
                "linked_identifiers": _plain(linked or {})}
    write_private(path, (json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n").encode())


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (0600, whatever the umask, also over an older file), in a
    directory made for the owner only (0700) when it is missing: an export holds one person's data."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # before any byte is written: the umask or an older file's mode
        out.write(data)


def audit_export(reader: Reader, subject: str, clickhouse: dict[str, list[Any]], processors: dict[str, Any]) -> str:
    """Record an export in the audit table; the request id."""
    request_id = f"pr-{uuid.uuid4().hex}"
    rows = sum(map(len, clickhouse.values()))
    tables, states = ", ".join(sorted(clickhouse)) or "none", ", ".join(sorted(processors)) or "none"
    _audit(reader, request_id, subject, "export", "clickhouse:*", rows, f"tables: {tables}; processor states: {states}")
    return request_id


def audit_table(records: list[dict[str, Any]], emitted_at: datetime) -> pa.Table:
    """Rows of ``privacy_audit`` from ``privacy-audit`` records (what the processors did)."""
    return pa.table({
        "request_id": _col(records, "request_id"), "subject": _col(records, "subject"),
        "action": _col(records, "action"), "location": _col(records, "location"),
        "rows": _col(records, "rows", pa.uint64(), 0), "detail": _col(records, "detail", default=""),
        "completed_at": _times(records, "completed_at"),
    })
