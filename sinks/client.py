"""One ClickHouse client for embedded (chDB) and server alike, chosen by the DSN."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import EllipsisType
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client


class ClickHouseUnavailable(RuntimeError):
    """The configured ClickHouse could not be opened or reached."""


def connect(dsn: str, username: str | None = None, password: str | None = None, **tls: Any) -> Client:
    """A clickhouse-connect client: ``chdb:///path`` or ``chdb://memory`` in-process, ``http(s)://`` to a server.

    ``tls`` passes ``verify`` and ``ca_cert`` through for ``https://``. chDB lets one process
    own a data path at a time; a second process gets a clear error.
    """
    kwargs: dict[str, Any] = dict(tls)
    if username:
        kwargs["username"] = username
    if password:
        kwargs["password"] = password
    if dsn.startswith("chdb://") and dsn != "chdb://memory":
        Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except ImportError as exc:
        raise ClickHouseUnavailable("embedded ClickHouse needs the 'embedded' extra (chdb)") from exc
    except Exception as exc:
        where = dsn.split("@")[-1]  # never echo credentials embedded in a DSN
        raise ClickHouseUnavailable(f"cannot open ClickHouse at {where}: {exc}") from exc


#: In ``schema.sql``, replaced by the attribution window in hours (the setting ``attribution_window_hours``).
ATTRIBUTION_WINDOW = "{attribution_window_hours}"
DEFAULT_ATTRIBUTION_HOURS = 24


def schema_statements(attribution_window_hours: int = DEFAULT_ATTRIBUTION_HOURS) -> list[str]:
    """The statements of ``schema.sql``, in order, without comments, with the attribution window put in."""
    hours = int(attribution_window_hours)  # goes into SQL: a whole number, nothing else
    if hours < 1:
        raise ValueError(f"attribution_window_hours must be at least 1, not {hours}")
    text = resources.files("sinks").joinpath("schema.sql").read_text().replace(ATTRIBUTION_WINDOW, str(hours))
    statements = []
    for chunk in text.split("\n;\n"):
        lines = [line for line in chunk.splitlines() if not line.strip().startswith("--")]
        statement = "\n".join(lines).strip().rstrip(";").strip()
        if statement:
            statements.append(statement)
    return statements


def apply_schema(client: Client, raw_retention_days: int | EllipsisType | None = ...,
                 attribution_window_hours: int = DEFAULT_ATTRIBUTION_HOURS) -> None:
    """Create every table and view that does not exist yet (safe to run at every start).

    ``raw_retention_days`` (the setting): the TTL of the clickstream, order and chat tables, late events and
    dead letters, never of the consent history (``apply_retention``); None removes it, and it is
    left as it is when not given.
    ``attribution_window_hours`` (the setting): how long after a trigger an order is attributed to it; the
    plain views are replaced at every start, so a new value applies to every trigger, past ones too.
    A rollup whose definition changed is replaced and refilled from the raw tables, and a profile
    history of an older sort key is rebuilt with its rows (``sinks.migrate``).
    """
    from sinks.migrate import (
        add_merged_into,
        drop_rollups,
        outdated_rollups,
        restore_old_profiles,
        set_aside_old_profiles,
    )
    from sinks.rebuild import rebuild_rollups

    outdated = outdated_rollups(client)
    drop_rollups(client, outdated)
    old_profiles = set_aside_old_profiles(client)
    if not old_profiles:
        add_merged_into(client)
    for statement in schema_statements(attribution_window_hours):
        client.command(statement)
    if old_profiles:
        restore_old_profiles(client)
    if outdated:
        rebuild_rollups(client, only=set(outdated))
    if raw_retention_days is not ...:
        apply_retention(client.command, raw_retention_days)


RAW_TABLES = {
    "clickstream": "clickstream_events",
    "orders": "order_events",
    "chat": "chat_messages",
    "consent": "consent_events",
}
DEAD_LETTER_TABLE = "dead_letters"

#: Settings of an insert into a raw table, which fans out to the rollups' materialized views: the
#: views run side by side instead of one after the other, and their target tables do not merge the
#: inserted block on insert (each view's GROUP BY already made its rows unique per key, and rollups
#: are read through sum/merge ... GROUP BY anyway). Measured in ``make bench`` (BENCHMARKS.md).
RAW_INSERT_SETTINGS: dict[str, int] = {"parallel_view_processing": 1, "optimize_on_insert": 0}


#: The consent history is kept whatever the retention: it is what shows a customer agreed to a message.
CONSENT_TABLE = RAW_TABLES["consent"]
#: Tables whose rows expire after ``raw_retention_days``, each by its time column: the raw event tables,
#: the late events and the dead letters (which hold the original bytes of what was refused).
RETAINED = {**{t: "event_time" for t in RAW_TABLES.values() if t != CONSENT_TABLE}, "late_events": "event_time",
            DEAD_LETTER_TABLE: "received_at"}


def _remove_ttl(command: Callable[[str], Any], table: str) -> None:
    try:
        command(f"ALTER TABLE `{table}` REMOVE TTL")
    except Exception as exc:  # no TTL to remove: ClickHouse says so, nothing to do
        if "TTL" not in str(exc):
            raise


def apply_retention(command: Callable[[str], Any], days: int | None) -> None:
    """Give the :data:`RETAINED` tables a TTL of ``days`` (None: remove it); never the consent history,
    whose TTL (one that an earlier version gave it) is removed. Idempotent."""
    for table, column in RETAINED.items():
        if days is None:
            _remove_ttl(command, table)
        else:
            command(f"ALTER TABLE `{table}` MODIFY TTL toDateTime({column}) + INTERVAL {int(days)} DAY")
    _remove_ttl(command, CONSENT_TABLE)
