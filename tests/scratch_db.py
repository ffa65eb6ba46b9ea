"""An embedded database in a data directory of its own, made in a child process.

chDB allows one database path per process, and the test process keeps its own (conftest
``chdb_path``): a test that needs another data directory (what ``journey run`` leaves there)
makes it in a child, which applies the schema and runs the given statements.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

_MAKE = """
import sys, orjson
from sinks.client import apply_schema, connect
path, schema, statements = sys.argv[1], sys.argv[2] == "1", orjson.loads(sys.argv[3])
client = connect(f"chdb://{path}")
if schema:
    apply_schema(client)
for sql in statements:
    client.command(sql)
client.close()
"""


def make_database(data_dir: Path, *statements: str, schema: bool = True) -> Path:
    """``<data_dir>/clickhouse`` with the pipeline's schema (unless ``schema=False``) and ``statements`` run."""
    path = (data_dir / "clickhouse").resolve()
    subprocess.run([sys.executable, "-c", _MAKE, str(path), "1" if schema else "0",
                    orjson.dumps(list(statements)).decode()], check=True, timeout=300)
    return data_dir
