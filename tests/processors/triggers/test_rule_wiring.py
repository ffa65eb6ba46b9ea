"""A trigger rule is wired everywhere it must be: every value of the contract's enum
(``schemas.outputs.TriggerType``) has a rule in the registry, a ``rules.toml`` section and typed
defaults, a cooldown and goals in the messages config (typed and in ``messages.toml``), a template in
every language, and a row in the docs that list the trigger values (processors/triggers/README.md's
walk-through names these places). Adding an enum value without wiring it fails here, naming what is missing.
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
from processors.triggers.rules import default_rules
from schemas.outputs import TriggerType

ROOT = Path(__file__).resolve().parents[3]
TRIGGERS = typing.get_args(TriggerType)
TEMPLATES = resources.files("processors.messages").joinpath("templates")
LANGUAGES = sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir())


def test_the_enum_and_the_rule_registry_name_the_same_triggers() -> None:
    assert len(TRIGGERS) == 9
    assert sorted(rule.name for rule in default_rules(RulesConfig())) == sorted(TRIGGERS)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_every_trigger_is_wired_everywhere(trigger: str) -> None:
    missing = []
    rules_toml = tomllib.loads(resources.files("processors.triggers").joinpath("rules.toml").read_text())
    messages_toml = tomllib.loads(resources.files("processors.messages").joinpath("messages.toml").read_text())
    if trigger not in {f.name for f in dataclasses.fields(RulesConfig)}:
        missing.append("a RulesConfig field (processors/triggers/config.py)")
    if trigger not in rules_toml:
        missing.append("a [section] in processors/triggers/rules.toml")
    cooldowns = {f.name for f in dataclasses.fields(PerTrigger)}
    if trigger not in cooldowns or trigger not in messages_toml["cooldown_hours"]:
        missing.append("a cooldown (PerTrigger in processors/messages/config.py and messages.toml [cooldown_hours])")
    if trigger not in {f.name for f in dataclasses.fields(Goals)} or trigger not in messages_toml["goals"]:
        missing.append("goals (Goals in processors/messages/config.py and messages.toml [goals])")
    for language in LANGUAGES:
        if not TEMPLATES.joinpath(language, f"{trigger}.j2").is_file():
            missing.append(f"processors/messages/templates/{language}/{trigger}.j2")
    for doc in ("README.md", "sinks/README.md", "processors/triggers/README.md"):
        if f"`{trigger}`" not in (ROOT / doc).read_text() and f" {trigger}," not in (ROOT / doc).read_text() \
                and f" {trigger} |" not in (ROOT / doc).read_text():
            missing.append(doc)
    assert not missing, f"{trigger} is not wired into: {'; '.join(missing)}"


def test_the_check_fails_for_an_unwired_trigger() -> None:
    """A new enum value with nothing else: the wiring test names every place it is missing."""
    with pytest.raises(AssertionError) as failed:
        test_every_trigger_is_wired_everywhere("price_drop")
    for place in ("RulesConfig", "rules.toml", "cooldown", "goals", "templates/en/price_drop.j2", "sinks/README.md"):
        assert place in str(failed.value)
