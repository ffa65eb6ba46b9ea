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


#: Profiles stored before versions were ordered by (events_total, as_of): set aside, then copied back.
PROFILES_SET_ASIDE = "customer_profile_history_before_profile_version"


def set_aside_old_profiles(client: Any) -> bool:
    """Rename a profile history without ``profile_version`` out of the way (True if there was one).

    Its sort key collapsed a stage timer's version into the one before it (same ``events_total``),
    and ``customer_profiles`` chose between them by insertion order. The schema step creates both
    anew; ``restore_old_profiles`` then copies the old rows in, which refills the latest profiles.
    """
    tables = {row[0]: row[1] for row in client.query(
        "SELECT name, sorting_key FROM system.tables WHERE database = currentDatabase() "
        "AND name IN ('customer_profile_history', {aside:String})", parameters={"aside": PROFILES_SET_ASIDE}
    ).result_rows}
    if PROFILES_SET_ASIDE in tables:  # a start that stopped between the two steps
        return True
    if "customer_profile_history" not in tables or "as_of" in tables["customer_profile_history"]:
        return False
    client.command("DROP VIEW IF EXISTS customer_profiles_mv")
    client.command("DROP TABLE IF EXISTS customer_profiles")
    client.command(f"RENAME TABLE customer_profile_history TO {PROFILES_SET_ASIDE}")
    log.warning("customer profiles had an older sort key: moved aside, copied back after the schema step")
    return True


def restore_old_profiles(client: Any) -> None:
    """Copy the set-aside profile history into the new one (its view refills ``customer_profiles``)."""
    columns = [row[0] for row in client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
        "ORDER BY position", parameters={"t": PROFILES_SET_ASIDE}).result_rows]
    listed = ", ".join(f"`{c}`" for c in columns)
    client.command(f"INSERT INTO customer_profile_history ({listed}) SELECT {listed} FROM {PROFILES_SET_ASIDE}")
    client.command(f"DROP TABLE {PROFILES_SET_ASIDE}")


def add_merged_into(client: Any) -> bool:
    """Give a profile history made before identity resolution its ``merged_into`` column (True if it lacked it).

    Both profile tables get the column; the view between them (its ``SELECT *`` was expanded when it
    was made) is dropped, and the schema step makes it again with the column.
    """
    rows = client.query("SELECT table FROM system.columns WHERE database = currentDatabase() "
                        "AND table = 'customer_profile_history' AND name = 'merged_into'").result_rows
    exists = client.query("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                          "AND name = 'customer_profile_history'").result_rows[0][0]
    if rows or not exists:
        return False
    for table in ("customer_profile_history", "customer_profiles"):
        client.command(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS merged_into Nullable(String) AFTER emitted_at")
    client.command("DROP VIEW IF EXISTS customer_profiles_mv")
    log.warning("customer profiles had no merged_into column (identity resolution): added")
    return True
