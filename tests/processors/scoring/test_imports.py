"""Domain logic imports no host, broker or database: no module of processors/ imports streams/ or sinks/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def host_imports(path: Path) -> list[str]:
    """The streams/sinks modules ``path`` imports, anywhere in the file (function-level imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [n for n in names if n.split(".")[0] in ("streams", "sinks")]
    return found


def test_scoring_processors_import_no_host_code() -> None:
    offenders = {str(p.relative_to(ROOT)): host_imports(p) for p in sorted((ROOT / "processors/scoring").glob("*.py"))}
    assert {p: names for p, names in offenders.items() if names} == {}
