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
    return {name: text for name, (_, text) in headed_sections().items()}


def headed_sections() -> dict[str, tuple[str, str]]:
    """Heading name -> (what the heading adds after the name, e.g. ``(view)``, the section's text)."""
    parts = re.split(r"^### `([a-z0-9_]+)`(.*)$", README.read_text(), flags=re.MULTILINE)
    return {parts[i]: (parts[i + 1].strip(), parts[i + 2]) for i in range(1, len(parts), 3)}


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

    # Each section says what it is: a view in its heading, a table's engine in its first paragraph.
    wrong = []
    for name, (heading, section) in headed_sections().items():
        engine = dict(tables)[name]
        first_paragraph = section.strip().split("\n\n")[0]
        if engine == "View":
            wrong += [] if heading == "(view)" else [f"{name}: a view, its heading should say (view)"]
        elif heading or not re.search(rf"\b{engine}\b", first_paragraph):
            wrong.append(f"{name}: the first paragraph should name its engine, {engine}")
    assert not wrong, wrong


def test_the_page_says_how_fresh_each_kind_of_table_is() -> None:
    fresh = README.read_text().split("**How fresh.**", 1)[1].split("\n\n", 1)[0]
    for kind in ("raw tables", "rollups", "Profiles", "Scores", "triggers", "Views"):
        assert kind in fresh, f"how fresh {kind} are is not said"
