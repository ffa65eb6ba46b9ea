"""Guards of the read-only commands (``journey query``, ``customer``, ``report``, ``models``).

They must never create an empty embedded database where there is none (run in the wrong
directory, chDB would make ``.journey/clickhouse`` there and every query would then fail with
``Unknown table expression identifier``): they say which data directory they looked in, and how
to point them at the right one.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sinks.access import OWNER_FILE
from streams.settings import Settings

_UNKNOWN_TABLE = re.compile(r"Unknown table expression identifier '([^']+)'|Table \S+?\.?(\w+) does not exist")


class NoPipelineData(RuntimeError):
    """The configured data directory holds no pipeline database (yet)."""


def missing_data(settings: Settings) -> str | None:
    """Why there is nothing to read in the configured embedded database, or None (a server, or data there)."""
    dsn = settings.resolved_clickhouse_dsn
    if not dsn.startswith("chdb://") or dsn == "chdb://memory":
        return None
    database = dsn.removeprefix("chdb://")
    data_dir = settings.data_dir.resolve()
    if (data_dir / OWNER_FILE).exists() or (Path(database) / "metadata").is_dir() \
            or (data_dir / "clickhouse" / "metadata").is_dir():  # the DSN may name a path outside the data dir
        return None
    return (f"no pipeline data in {data_dir} (no database at {database}). Run `journey run` first, or run this "
            "command where `journey run` ran, or set JOURNEY_DATA_DIR (or data_dir in journey.toml) to its data "
            "directory")


def require_data(settings: Settings) -> None:
    """Raise :class:`NoPipelineData` (with the fix) before anything opens, and so creates, the database."""
    reason = missing_data(settings)
    if reason is not None:
        raise NoPipelineData(reason)


@cache
def schema_tables() -> frozenset[str]:
    """Every table and view ``sinks/schema.sql`` creates."""
    from importlib.resources import files

    sql = files("sinks").joinpath("schema.sql").read_text()
    return frozenset(re.findall(r"CREATE (?:OR REPLACE )?(?:TABLE|VIEW|MATERIALIZED VIEW)(?: IF NOT EXISTS)? "
                                r"(\w+)", sql))


def missing_schema_hint(settings: Settings, message: str) -> str | None:
    """When ClickHouse says one of the pipeline's own tables is missing: which database, and the fix."""
    match = _UNKNOWN_TABLE.search(message)
    name = match and (match.group(1) or match.group(2))
    if not name or name not in schema_tables():
        return None
    return (f"{name} is one of the pipeline's tables, and {settings.resolved_clickhouse_dsn} does not have it: "
            "no `journey run` has stored anything there yet (`journey init` creates the tables on a ClickHouse "
            "server). Wrong directory? Set JOURNEY_DATA_DIR to the data directory of your run")
