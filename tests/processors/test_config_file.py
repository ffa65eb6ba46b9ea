"""One TOML loader for every processor's parameters, with one error type that belongs to no single processor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from processors.config_file import ConfigError
from processors.features.segments import load_segments
from processors.messages.config import load_messages_config
from processors.scoring.config import load_scoring
from processors.triggers.config import load_rules

LOADERS: dict[str, Callable[[Path], Any]] = {
    "rules": load_rules, "scoring": load_scoring, "messages": load_messages_config, "segments": load_segments}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_parameters_file_refuses_bad_toml_with_the_loaders_error(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text("[section\n")
    with pytest.raises(ConfigError) as raised:
        LOADERS[name](path)
    assert str(raised.value).startswith(f"{path}: ")
    assert type(raised.value).__module__ in {"processors.config_file", "processors.features.segments"}


@pytest.mark.parametrize(("name", "section"), [("rules", "timers"), ("scoring", "purchase_propensity"),
                                               ("messages", "holdout")])
def test_an_unknown_parameter_is_named_in_a_config_error(name: str, section: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"[{section}]\nno_such_key = 1\n")
    with pytest.raises(ConfigError, match=rf"\[{section}\] unknown parameter 'no_such_key'") as raised:
        LOADERS[name](path)
    assert type(raised.value) is ConfigError  # not a trigger-rules error raised by scoring or messages


def test_the_loader_module_depends_on_no_processor() -> None:
    import ast

    source = Path(__file__).resolve().parents[2] / "processors" / "config_file.py"
    imported = {n.module for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.ImportFrom)}
    assert {m for m in imported if m and m.split(".")[0] == "processors"} == set()
