"""Topic names come from ``schemas/registry.py`` only: no module spells one out, read with ``ast``.

Two checks over every source package:

- no module-level constant is bound to a topic's name anywhere but the registry;
- no string literal is a topic name with a hyphen (``customer-features``, ``dead-letters``...)
  outside the registry, a command's ``name=`` aside (``journey dead-letters``).

One-word topic names (``orders``, ``triggers``, ``messages``...) are also the names of ClickHouse
tables, worker roles and event sources, so the second check cannot tell them apart; the first
still holds for them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from schemas.registry import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("processors", "streams", "sinks", "schemas", "plumbing")
REGISTRY = Path("schemas/registry.py")


def spelled_out(root: Path, packages: tuple[str, ...], topics: set[str]) -> tuple[list[str], list[str]]:
    """(constants bound to a topic name, hyphenated topic-name literals), as ``file:line: text``."""
    constants: list[str] = []
    literals: list[str] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if rel == REGISTRY:
                continue
            tree = ast.parse(path.read_text())
            for node in tree.body:
                value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
                if isinstance(value, ast.Constant) and value.value in topics:
                    constants.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            command_names = {id(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "name"}
            for node in ast.walk(tree):
                if (isinstance(node, ast.Constant) and node.value in topics and "-" in node.value
                        and id(node) not in command_names):
                    literals.append(f"{rel}:{node.lineno}: {node.value!r}")
    return constants, literals


def test_topic_names_are_spelled_out_only_in_the_registry() -> None:
    constants, literals = spelled_out(ROOT, PACKAGES, set(ALL_TOPICS))
    assert constants == []
    assert literals == []


def test_the_check_finds_constants_and_literals(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        'ORDERS_TOPIC = "orders"\n'
        'class K:\n    late: str = "late-events"\n'
        'def f(app):\n    app.add_typer(app, name="dead-letters")\n    return ["customer-features", "orders"]\n')
    constants, literals = spelled_out(tmp_path, ("pkg",), set(ALL_TOPICS))
    assert constants == ["pkg/m.py:1: ORDERS_TOPIC = 'orders'"]  # class attributes aside: a feature's name is 'orders'
    assert literals == ["pkg/m.py:3: 'late-events'", "pkg/m.py:6: 'customer-features'"]
