"""processors/triggers/README.md documents every rule and parameter that ``RulesConfig`` and ``rules.toml`` have."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from processors.triggers.config import RulesConfig, load_rules
from processors.triggers.rules import default_rules

PACKAGE = Path(__file__).parents[3] / "processors" / "triggers"
README = (PACKAGE / "README.md").read_text()


def test_every_rule_and_parameter_is_in_the_readme_with_its_default() -> None:
    config = RulesConfig()
    missing = []
    for section in dataclasses.fields(config):
        if f"`{section.name}`" not in README and f"`[{section.name}]`" not in README:
            missing.append(section.name)
        for parameter in dataclasses.fields(getattr(config, section.name)):
            value = getattr(getattr(config, section.name), parameter.name)
            if f"`{parameter.name}`" not in README:
                missing.append(f"{section.name}.{parameter.name}")
            elif parameter.name != "enabled" and not _default_shown(parameter.name, value):
                missing.append(f"{section.name}.{parameter.name} = {value!r}")
    assert not missing, f"not documented (or without its default) in processors/triggers/README.md: {missing}"
    assert {rule.name for rule in default_rules(config)} == {s.name for s in dataclasses.fields(config)} - {"timers"}


def test_the_shipped_rules_file_is_the_defaults_and_names_the_same_sections() -> None:
    shipped = tomllib.loads((PACKAGE / "rules.toml").read_text())
    assert load_rules() == RulesConfig()
    assert set(shipped) == {s.name for s in dataclasses.fields(RulesConfig)}


def _default_shown(name: str, value: object) -> bool:
    """The README gives ``name (default)``: 30 for 30.0, `high` for strings, true for True."""
    if isinstance(value, bool):
        shown = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        shown = str(int(value))
    elif isinstance(value, str):
        shown = f"`{value}`"
    else:
        shown = str(value)
    return f"`{name}` ({shown}" in README
