"""The trigger rules, one per module, found rather than listed: ``SPECS`` maps trigger -> rule.

Every module of this package (other than ``base``) declares ``SPECS``, a tuple of
``base.RuleSpec``: the trigger type it fires (a value of ``schemas.outputs.TriggerType``), its
parameters' typed defaults and how to build the rule. ``RulesConfig`` (``config.py``) gets one
section per spec and ``default_rules`` builds the enabled rules, in the enum's order (the order
immediate triggers of one event come out). A spec naming a trigger the enum lacks, or a trigger
declared twice, is refused at import with the module named.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from typing import Any

from processors.triggers.rules.base import Rule, RuleSpec
from schemas.outputs import TriggerType

TRIGGERS: tuple[str, ...] = typing.get_args(TriggerType)


def discover(package: str = __name__) -> tuple[RuleSpec, ...]:
    """The ``SPECS`` of every module of ``package``, in the order of ``TriggerType``."""
    found: dict[str, tuple[str, RuleSpec]] = {}
    for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{package}.{module_info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.trigger not in TRIGGERS:
                raise ValueError(f"{module.__name__} declares trigger {spec.trigger!r}, which is not a value of "
                                 f"schemas.outputs.TriggerType (add it there)")
            if spec.trigger in found:
                raise ValueError(f"trigger {spec.trigger!r} is declared by both {found[spec.trigger][0]} "
                                 f"and {module.__name__}")
            found[spec.trigger] = (module.__name__, spec)
    return tuple(found[trigger][1] for trigger in TRIGGERS if trigger in found)


SPECS = discover()


def default_rules(config: Any) -> list[Rule]:
    """Every enabled rule of a ``RulesConfig``, in a fixed order (the order immediate triggers of an event come out)."""
    rules = [spec.build(getattr(config, spec.trigger), config) for spec in SPECS]
    return [rule for rule in rules if rule.enabled]


__all__ = ["SPECS", "TRIGGERS", "Rule", "RuleSpec", "default_rules", "discover"]
