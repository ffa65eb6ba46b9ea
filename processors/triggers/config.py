"""Rule parameters: typed defaults, overridden by a TOML file (``rules.toml`` ships the defaults).

``RulesConfig`` has the ``[timers]`` section and one section per rule the registry found
(``rules.SPECS``, in the order of ``schemas.outputs.TriggerType``); each rule's typed defaults live
in its own module, so adding a rule does not touch this file. Every parameter is documented in
``rules.toml`` and in this package's ``README.md``. A file naming an unknown rule or parameter, or
giving a value of the wrong type, is refused with the name, so a typo cannot silently keep a
default (``processors.config_file.ConfigError``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.config_file import read_toml, sections_from_dict
from processors.features.base import DAY_MS, HOUR_MS, MINUTE_MS
from processors.triggers.rules import SPECS


@dataclass(frozen=True)
class Timers:
    allowed_lateness_minutes: int = 60
    live_delay_seconds: int = 60


def _lateness_ms(self: Any) -> int:
    return self.timers.allowed_lateness_minutes * MINUTE_MS


def _live_delay_ms(self: Any) -> int:
    return self.timers.live_delay_seconds * 1000


#: All rule parameters (a frozen dataclass: ``timers``, then one field per rule); ``load_rules`` builds one from a file.
RulesConfig: Any = dataclasses.make_dataclass(
    "RulesConfig",
    [("timers", Timers, field(default_factory=Timers)),
     *((spec.trigger, type(spec.defaults), field(default=spec.defaults)) for spec in SPECS)],
    frozen=True,
    namespace={"__doc__": "All rule parameters; ``load_rules`` builds one from a file.",
               "lateness_ms": property(_lateness_ms), "live_delay_ms": property(_live_delay_ms)},
)
RulesConfig.__module__ = __name__  # pickled and named as processors.triggers.config.RulesConfig


def rules_from_dict(data: dict[str, Any]) -> Any:
    """A config from parsed TOML: known sections and keys only, values of the default's type."""
    return sections_from_dict(RulesConfig(), data)


def load_rules(path: Path | None = None) -> Any:
    """Rules from ``path``, or the shipped ``processors/triggers/rules.toml``."""
    return rules_from_dict(read_toml(path, "processors.triggers", "rules.toml"))


__all__ = ["DAY_MS", "HOUR_MS", "MINUTE_MS", "RulesConfig", "Timers", "load_rules", "rules_from_dict"]
