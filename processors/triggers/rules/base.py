"""What every trigger rule is: a name, its own per-customer state, and reactions to events and scores.

A rule reacts to an accepted input event (``on_event``) and to a score (``on_score``) by
returning triggers that fire now, and by arming or cancelling timers in the customer's
state for the ones that fire on absence. A matured timer becomes a trigger through
``on_timer``; rules that need nothing special keep the default reading of the timer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from processors.features.base import Observed
from processors.triggers.records import Fired
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer


class Rule(Protocol):
    name: str
    #: Input topics whose events the rule reads.
    topics: ClassVar[frozenset[str]]
    enabled: bool

    def init(self) -> Any:
        """The rule's state for a customer never seen before (picklable), or None."""

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        """React to one accepted input event; return triggers that fire now."""

    def on_score(self, state: TriggerState, score: Any, previous_band: str | None) -> list[Fired]:
        """React to a new score (``schemas.outputs.Score``) given the model's previous band."""

    def on_timer(self, state: TriggerState, timer: Timer) -> Fired | None:
        """The trigger of one of the rule's matured timers (None: nothing to fire after all)."""


@dataclass(frozen=True)
class RuleSpec:
    """How the registry finds a rule: a rule module declares ``SPECS``, a tuple of these.

    ``trigger`` is the rule's value of ``schemas.outputs.TriggerType`` and the name of its
    ``rules.toml`` section; ``defaults`` is the section's typed defaults (a frozen dataclass with
    ``enabled``, kept in the rule module); ``build(section, rules_config)`` makes the rule from its
    loaded section and the whole ``RulesConfig`` (for shared values such as the lateness).
    """

    trigger: str
    defaults: Any
    build: Callable[[Any, Any], Rule]


class RuleBase:
    """Defaults: no state, no score reaction."""

    name: str = ""
    topics: ClassVar[frozenset[str]] = frozenset()
    enabled: bool = True

    def init(self) -> Any:
        return None

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        return []

    def on_score(self, state: TriggerState, score: Any, previous_band: str | None) -> list[Fired]:
        return []

    def on_timer(self, state: TriggerState, timer: Timer) -> Fired | None:
        return fire_timer(timer)


def fire_timer(timer: Timer) -> Fired:
    """The trigger of a matured timer: fired at its deadline, anchored on the event that armed it."""
    return Fired(timer.trigger, timer.deadline_ms, timer.anchor_id, "timer", timer.context.get("reason", ""),
                 timer.products, {k: v for k, v in timer.context.items() if k != "reason"})
