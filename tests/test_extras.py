"""faust-streaming and aiokafka are the ``bench`` extra's: not core dependencies, not in the workers' image.

``make bench`` installs the extra, the ``dev`` extra includes it (so ``make test`` and CI run the faust
host's tests), and those tests skip with the reason only where it is missing, never in CI.
"""

from __future__ import annotations

import ast
import re
import tomllib

import pytest

from tests.conftest import ROOT, require_extra

BENCH = {"faust-streaming", "aiokafka"}


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[=<>\[;\s]", r, maxsplit=1)[0] for r in requirements}


def test_faust_and_aiokafka_are_the_bench_extra_which_dev_includes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert names(project["dependencies"]) & BENCH == set()
    assert names(extras["bench"]) == BENCH
    assert f"{project['name']}[bench]" in extras["dev"]


def test_the_workers_image_installs_no_extra() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    installs = re.findall(r"pip install (\S+)", dockerfile)
    assert installs == ["."]


def test_make_bench_installs_the_bench_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (prerequisites,) = re.findall(r"^bench: (.*)$", makefile, re.M)
    assert "$(BENCH_STAMP)" in prerequisites.split()
    rule = makefile[makefile.index("$(BENCH_STAMP): "):]
    assert re.match(r"\$\(BENCH_STAMP\): .*\n\t\$\(BIN\)/pip install --quiet -e '\.\[bench\]'\n", rule)


def test_only_the_faust_host_imports_faust() -> None:
    importers = set()
    for package in ("processors", "streams", "sinks", "schemas", "plumbing"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(m.split(".")[0] in {"faust", "aiokafka"} for m in modules):
                    importers.add(str(path.relative_to(ROOT)))
    assert importers == {"streams/faust_features.py", "streams/faust_recovery.py"}


def test_a_missing_extra_skips_with_the_reason_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"needs no_such_module_x, from the bench extra \(pip install"):
        require_extra("no_such_module_x", "bench")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it: needs no_such_module_x"):
        require_extra("no_such_module_x", "bench")
    require_extra("faust", "bench")  # installed here (the dev extra): nothing happens
