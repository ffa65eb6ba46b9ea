"""sinks/README.md describes every table, view and column that schema.sql creates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "sinks" / "README.md"


def sections() -> dict[str, str]:
    """Heading name -> the text of its section."""
    text = README.read_text()
    parts = re.split(r"^### `([a-z0-9_]+)`.*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


#: Run in a fresh process: chDB opens one database path per process, and the test session has its own.
_LIST_SCHEMA = """
import json
from sinks.client import apply_schema, connect
client = connect("chdb://memory")
apply_schema(client)
tables = client.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows
columns = client.query("SELECT table, name FROM system.columns WHERE database = currentDatabase()").result_rows
print(json.dumps({"tables": tables, "columns": columns}))
"""


def test_every_table_view_and_column_is_documented() -> None:
    listed = subprocess.run([sys.executable, "-c", _LIST_SCHEMA], capture_output=True, text=True, check=True,
                            timeout=300)
    schema = json.loads(listed.stdout.strip().splitlines()[-1])
    tables = [tuple(row) for row in schema["tables"]]
    columns_of: dict[str, list[str]] = {}
    for table, column in schema["columns"]:
        columns_of.setdefault(table, []).append(column)
    described = sections()
    text = README.read_text()
    missing = []
    for name, engine in tables:
        if engine == "MaterializedView":  # feeds: named in the section of the table they fill
            if f"`{name}`" not in text:
                missing.append(name)
            continue
        if name not in described:
            missing.append(name)
            continue
        missing += [f"{name}.{c}" for c in columns_of.get(name, []) if f"`{c}`" not in described[name]]
    assert not missing, f"not described in sinks/README.md: {missing}"
    assert set(described) <= {name for name, _ in tables}, "sections for tables that do not exist"
