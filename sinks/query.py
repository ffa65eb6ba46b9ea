"""Queries against the configured ClickHouse, for the command line and reports."""

from __future__ import annotations

from typing import Any

from sinks.client import ClickHouseUnavailable, connect
from streams.settings import Settings


def run_query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql``. In embedded mode the database must not be held by a running sink."""
    dsn = settings.resolved_clickhouse_dsn
    password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None
    try:
        client = connect(dsn, settings.clickhouse_user, password)
    except ClickHouseUnavailable as exc:
        if dsn.startswith("chdb://"):
            raise ClickHouseUnavailable(f"{exc} (is a pipeline running on this data directory?)") from exc
        raise
    try:
        result = client.query(sql)
        return list(result.column_names), [tuple(row) for row in result.result_rows]
    finally:
        client.close()
