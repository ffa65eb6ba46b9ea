"""The import graph of the source packages, read with ``ast`` (nothing is imported): no cycles.

Layers, lowest first (each may import only those before it):

- ``schemas``: the topic contracts;
- ``processors``: the domain, which imports no host, broker or database (nothing of ``plumbing``,
  ``sinks`` or ``streams``), so it runs the same in any host;
- ``plumbing``: what the hosts and the sinks share (Kafka client helpers, waits that follow
  progress, the background HTTP server, terminal-safe text);
- ``sinks``: ClickHouse;
- ``streams``: the hosts, the sources and the command line, which put the rest together.

Every import counts, a function-level one too, and no module may be part of an import cycle, inside a
package or across packages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Package -> the packages it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "processors": {"schemas"},
    "plumbing": {"schemas"},
    "sinks": {"schemas", "processors", "plumbing"},
    "streams": {"schemas", "processors", "plumbing", "sinks"},
}


def source_packages(root: Path) -> list[str]:
    """The top-level packages under ``root`` (directories with an ``__init__.py``), tests aside."""
    return sorted(p.parent.name for p in root.glob("*/__init__.py") if p.parent.name != "tests")


def modules(root: Path, packages: list[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages``."""
    found = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported_names(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of everything ``path`` imports, relative imports resolved; for ``from m import x``
    both ``m`` and ``m.x`` (``x`` may be a submodule)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module, node.lineno
            for alias in node.names:
                yield f"{module}.{alias.name}", node.lineno


def module_graph(root: Path, packages: list[str]) -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the modules of ``packages`` it imports, and one ``file:line: a -> b`` line per import
    of another top-level package."""
    known = modules(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in known}
    crossings = []
    for name, path in known.items():
        for imported, line in imported_names(name, path):
            if imported.split(".")[0] not in packages:
                continue
            target = imported
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
            if imported.split(".")[0] != name.split(".")[0]:
                crossings.append(f"{path.relative_to(root)}:{line}: {name} -> {imported}")
    return graph, crossings


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Top-level package -> the other top-level packages its modules import."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        top = module.split(".")[0]
        packages.setdefault(top, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != top)
    return packages


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, set[str]], list[str]]:
    return module_graph(ROOT, source_packages(ROOT))


def test_every_source_package_has_a_layer() -> None:
    assert source_packages(ROOT) == sorted(ALLOWED)


def test_each_package_imports_only_the_layers_below_it(graph: tuple[dict[str, set[str]], list[str]]) -> None:
    _, crossings = graph
    outside = [line for line in crossings
               if line.split(" -> ")[1].split(".")[0] not in ALLOWED[line.split(": ")[1].split(".")[0]]]
    assert outside == []


def test_processors_import_no_host_broker_or_database(graph: tuple[dict[str, set[str]], list[str]]) -> None:
    _, crossings = graph
    assert [line for line in crossings if ": processors." in line
            and line.split(" -> ")[1].split(".")[0] in {"streams", "sinks", "plumbing"}] == []


def test_no_cycle_between_packages_or_modules(graph: tuple[dict[str, set[str]], list[str]]) -> None:
    modules_, _ = graph
    assert cycles(package_graph(modules_)) == []
    assert cycles(modules_) == []


def test_the_check_sees_cycles_and_crossings(tmp_path: Path) -> None:
    """On a small tree: a cycle through a function-level and a relative import, and one package crossing."""
    for package, files in {
        "alpha": {"__init__.py": "", "a.py": "def f():\n    from alpha import b\n",
                  "b.py": "from .c import x\n", "c.py": "import alpha.a\nx = 1\n"},
        "beta": {"__init__.py": "", "d.py": "from alpha.c import x\n"},
    }.items():
        (tmp_path / package).mkdir()
        for file, text in files.items():
            (tmp_path / package / file).write_text(text)
    modules_, crossings = module_graph(tmp_path, source_packages(tmp_path))
    assert cycles(modules_) == [["alpha.a", "alpha.b", "alpha.c"]]
    assert crossings == ["beta/d.py:1: beta.d -> alpha.c", "beta/d.py:1: beta.d -> alpha.c.x"]
    assert package_graph(modules_) == {"alpha": set(), "beta": {"alpha"}}
    assert cycles({**package_graph(modules_), "alpha": {"beta"}}) == [["alpha", "beta"]]
