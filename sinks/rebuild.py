"""Rebuilding the rollups from the raw tables, after a sink died in the middle of an insert.

An INSERT into a raw table writes the raw part, then the parts of the materialized views fed
by it. A sink killed between the two (SIGKILL, power loss) leaves the raw rows stored and the
rollups without them; the restarted sink then skips those events as already stored, so the
rollups would stay short for good. The raw tables are the truth: this recomputes every
materialized view's target from them (truncate every target, then run each view's own SELECT
over its base table; views fed by another view's target follow through the inserts).

The embedded sink does it by itself when it starts after an unclean stop (``SinkRunMarker``):
one sink owns an embedded database. On a ClickHouse server, run ``journey rebuild-rollups``
while no sink writes.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_TARGET = re.compile(r"\bTO\s+(?:`?[\w.]+`?\.)?`?(\w+)`?", re.IGNORECASE)


def view_targets(client: Any) -> dict[str, str]:
    """Every materialized view of the database and the table it writes into."""
    out = {}
    for view, create in client.query("SELECT name, create_table_query FROM system.tables WHERE database = "
                                     "currentDatabase() AND engine = 'MaterializedView'").result_rows:
        match = _TARGET.search(create.split(" AS ", 1)[0])
        if match is None:
            raise RuntimeError(f"materialized view {view} has no TO table: cannot rebuild it")
        out[view] = match[1]
    return out


def rebuild_rollups(client: Any, only: set[str] | None = None) -> dict[str, int]:
    """Recompute every materialized view's target table from the raw tables; rows per target afterwards.

    ``only``: just these targets (and those fed by their views), e.g. rollups whose definition changed.
    """
    rows = client.query("SELECT name, engine, create_table_query, as_select, dependencies_table FROM system.tables "
                        "WHERE database = currentDatabase()").result_rows
    views = {name: (create, select) for name, engine, create, select, _ in rows if engine == "MaterializedView"}
    source_of = {view: name for name, _, _, _, dependents in rows for view in dependents if view in views}
    target_of = view_targets(client)
    targets = set(target_of.values())
    if only is not None:
        targets = set(only)
        while True:  # targets fed by a view over one of them are recomputed too
            fed = {target_of[view] for view, source in source_of.items() if source in targets} - targets
            if not fed:
                break
            targets |= fed
        views = {view: spec for view, spec in views.items() if target_of[view] in targets}
    for target in sorted(targets):
        client.command(f"TRUNCATE TABLE `{target}`")
    for view in sorted(views):
        if source_of.get(view) in targets:
            continue  # fed by another view's target: filled by the inserts below
        select = views[view][1]
        # A view inserts by column name: name the SELECT's columns (the target may have more, with defaults).
        columns = ", ".join(f"`{name}`" for name, *_ in client.query(f"DESCRIBE ({select})").result_rows)
        client.command(f"INSERT INTO `{target_of[view]}` ({columns}) {select}")
    counts = {t: int(client.command(f"SELECT count() FROM `{t}`")) for t in sorted(targets)}
    log.info("rebuilt %d rollup tables from the raw tables: %s", len(counts), counts)
    return counts


class SinkRunMarker:
    """A file in the data directory that says a sink is running; found at start, the last one did not stop cleanly."""

    def __init__(self, data_dir: Path, group_id: str) -> None:
        self.path = data_dir / f"{group_id}.running"

    def previous_run_crashed(self) -> bool:
        if not self.path.exists():
            return False
        try:
            pid = int(self.path.read_text().strip() or 0)
        except ValueError:
            return True
        return pid != os.getpid() and not _alive(pid)

    def __enter__(self) -> SinkRunMarker:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
