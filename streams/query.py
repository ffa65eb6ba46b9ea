"""Queries against the configured ClickHouse, for the command line and reports."""

from __future__ import annotations

from typing import Any

from sinks.access import Reader, open_reader
from streams.settings import Settings


def reader(settings: Settings, direct: bool = True) -> Reader:
    """A reader for the configured ClickHouse (embedded: through the owning process when one runs;
    ``direct=False``: never by opening the embedded database in this process)."""
    return open_reader(settings.resolved_clickhouse_dsn, settings.data_dir, direct=direct,
                       **settings.clickhouse_options())


def run_query(settings: Settings, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql``."""
    with reader(settings) as r:
        return r.rows(sql)
