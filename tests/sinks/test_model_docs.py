"""sinks/README.md describes every table, view and column that schema.sql creates."""

from __future__ import annotations

import re
from pathlib import Path

from sinks.client import apply_schema, connect

README = Path(__file__).parents[2] / "sinks" / "README.md"


def sections() -> dict[str, str]:
    """Heading name -> the text of its section."""
    text = README.read_text()
    parts = re.split(r"^### `([a-z0-9_]+)`.*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_table_view_and_column_is_documented() -> None:
    client = connect("chdb://memory")
    apply_schema(client)
    described = sections()
    text = README.read_text()
    missing = []
    tables = client.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows
    for name, engine in tables:
        if engine == "MaterializedView":  # feeds: named in the section of the table they fill
            if f"`{name}`" not in text:
                missing.append(name)
            continue
        if name not in described:
            missing.append(name)
            continue
        columns = client.query("SELECT name FROM system.columns WHERE database = currentDatabase() "
                               "AND table = {t:String}", parameters={"t": name}).result_rows
        missing += [f"{name}.{c}" for (c,) in columns if f"`{c}`" not in described[name]]
    assert not missing, f"not described in sinks/README.md: {missing}"
    assert set(described) <= {name for name, _ in tables}, "sections for tables that do not exist"
