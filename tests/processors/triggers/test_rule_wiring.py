"""A trigger rule is wired everywhere it must be: every value of the contract's enum
(``schemas.outputs.TriggerType``) has a rule module declaring it in ``SPECS`` (the registry finds it;
its config dataclass makes the ``RulesConfig`` section), a ``rules.toml`` section, a cooldown and goals
in the messages config (built from the enum, defaults none), a template in every language, and a row in
the docs that list the trigger values (checked against the enum). processors/triggers/README.md's
walk-through names these places. Adding an enum value without wiring it fails here, naming what is missing.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from importlib import resources
from pathlib import Path

import pytest

from processors.messages.config import Goals, PerTrigger
from processors.triggers.config import RulesConfig
from processors.triggers.rules import SPECS, default_rules
from schemas.outputs import TriggerType

ROOT = Path(__file__).resolve().parents[3]
TRIGGERS = typing.get_args(TriggerType)
DOCS = ("README.md", "sinks/README.md", "processors/triggers/README.md")


def _languages() -> list[str]:
    templates = resources.files("processors.messages").joinpath("templates")
    return sorted(p.name for p in templates.iterdir() if p.is_dir())


def missing_code(trigger: str) -> list[str]:
    """The code places ``trigger`` is not wired into (the walk-through's four steps), by name."""
    missing = []
    if trigger not in typing.get_args(TriggerType):
        missing.append("the TriggerType enum (schemas/outputs.py)")
    if trigger not in {spec.trigger for spec in SPECS}:
        missing.append("a rule module in processors/triggers/rules/ declaring it in SPECS")
    if trigger not in {f.name for f in dataclasses.fields(RulesConfig)}:
        missing.append("a RulesConfig section (its config dataclass, from the rule module's SPECS)")
    rules_toml = tomllib.loads(resources.files("processors.triggers").joinpath("rules.toml").read_text())
    if trigger not in rules_toml:
        missing.append("a [section] in processors/triggers/rules.toml")
    if trigger not in {f.name for f in dataclasses.fields(PerTrigger)}:
        missing.append("a cooldown (PerTrigger in processors/messages/config.py, built from the TriggerType enum)")
    if trigger not in {f.name for f in dataclasses.fields(Goals)}:
        missing.append("goals (Goals in processors/messages/config.py, built from the TriggerType enum)")
    templates = resources.files("processors.messages").joinpath("templates")
    for language in _languages():
        if not templates.joinpath(language, f"{trigger}.j2").is_file():
            missing.append(f"processors/messages/templates/{language}/{trigger}.j2")
    return missing


def missing_docs(trigger: str, root: Path = ROOT) -> list[str]:
    """The docs that list the trigger values (checked against the enum) and lack ``trigger``."""
    missing = []
    for doc in DOCS:
        text = (root / doc).read_text()
        if f"`{trigger}`" not in text and f" {trigger}," not in text and f" {trigger} |" not in text:
            missing.append(doc)
    return missing


def test_the_enum_and_the_rule_registry_name_the_same_triggers() -> None:
    assert len(TRIGGERS) == 9
    assert sorted(rule.name for rule in default_rules(RulesConfig())) == sorted(TRIGGERS)
    assert [spec.trigger for spec in SPECS] == list(TRIGGERS)  # the registry's order is the enum's


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_every_trigger_is_wired_everywhere(trigger: str) -> None:
    missing = missing_code(trigger) + missing_docs(trigger)
    assert not missing, f"{trigger} is not wired into: {'; '.join(missing)}"


def test_the_check_fails_for_an_unwired_trigger() -> None:
    """A new trigger with nothing else: the wiring test names every place it is missing."""
    with pytest.raises(AssertionError) as failed:
        test_every_trigger_is_wired_everywhere("price_drop")
    for place in ("RulesConfig", "rules.toml", "cooldown", "goals", "templates/en/price_drop.j2", "sinks/README.md",
                  "TriggerType enum", "SPECS"):
        assert place in str(failed.value)
