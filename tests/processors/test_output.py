"""The record type processors give their hosts is defined once (``processors/output.py``), not per module.

The state store's ``Write`` (key, value, next timer) is another record and not matched.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_output_record_type_is_defined_once() -> None:
    definitions = []
    for package in ("processors", "streams", "sinks", "schemas", "plumbing"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
                if value is not None and ast.unparse(value).startswith("tuple[str, bytes | None, bytes"):
                    definitions.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert definitions == [
        "processors/output.py:6: Output = tuple[str, bytes | None, bytes]",
        "processors/output.py:8: ErasureOutput = tuple[str, bytes | None, bytes | None]",
    ]
