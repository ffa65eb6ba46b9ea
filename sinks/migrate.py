"""Rollup tables whose definition changed since a database was created: replaced, then refilled.

``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it is, so a rollup whose columns
changed would keep the old ones and its new materialized views would no longer fit it. Before
the schema step, each rollup listed here that still has its old column type is dropped with
the views that feed it; the schema step creates them anew; then they are recomputed from the
raw tables (``sinks.rebuild``), which stay the truth.
"""

from __future__ import annotations

import logging
from typing import Any

from sinks.rebuild import view_targets

log = logging.getLogger(__name__)

#: (rollup table, column, prefix of the column's old type).
CHANGED_ROLLUPS: tuple[tuple[str, str, str], ...] = (
    # First touch per customer: argMin states became the plain minimum of (time, id, channel, source),
    # the same order and about half the cost per inserted row (make bench, "What the rollups cost").
    ("customer_value_state", "first_touch", "AggregateFunction(argMin"),
)


def outdated_rollups(client: Any) -> list[str]:
    """The rollup tables of ``CHANGED_ROLLUPS`` that still have their old definition."""
    out = []
    for table, column, old in CHANGED_ROLLUPS:
        rows = client.query("SELECT type FROM system.columns WHERE database = currentDatabase() "
                            "AND table = {t:String} AND name = {c:String}",
                            parameters={"t": table, "c": column}).result_rows
        if rows and str(rows[0][0]).startswith(old):
            out.append(table)
    return out


def drop_rollups(client: Any, tables: list[str]) -> None:
    """Drop ``tables`` and the materialized views that write into them (the schema step recreates both)."""
    for view, target in view_targets(client).items():
        if target in tables:
            client.command(f"DROP VIEW IF EXISTS `{view}`")
    for table in tables:
        client.command(f"DROP TABLE IF EXISTS `{table}`")
        log.warning("rollup %s had an older definition: replaced, and refilled from the raw tables", table)
