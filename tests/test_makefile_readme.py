"""The README says exactly what `make run` installs (issue 19, item 8): the extras of the Makefile's install line."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def installed_extras() -> set[str]:
    """The extras the Makefile's virtualenv rule installs (``pip install -e '.[a,b]'``), which `make run` uses."""
    makefile = (ROOT / "Makefile").read_text()
    rule = makefile[makefile.index("$(STAMP): pyproject.toml"):makefile.index("install: $(STAMP)")]
    (extras,) = re.findall(r"pip install --quiet -e '\.\[([\w,]+)\]'", rule)
    assert re.search(r"^run: \$\(STAMP\)", makefile, re.M) and re.search(r"^test: \$\(STAMP\)", makefile, re.M)
    return set(extras.split(","))


def readme_install_sentence() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("`make run` creates `.venv/`, installs the project with")
    return " ".join(text[start:text.index("starts a Kafka-compatible broker", start)].split())


def test_the_readme_names_every_extra_make_run_installs() -> None:
    named = set(re.findall(r"`(\w+)` extra", readme_install_sentence()))
    assert named == installed_extras() == {"embedded", "reports", "dev"}
