"""Checkout abandoned: a checkout started and no order for ``after_minutes``.

A later checkout inside the period re-arms from its own time; an order inside the period
cancels it. A checkout at or before the latest order is already finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from processors.features.base import MINUTE_MS, Observed
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm, cancel, is_slot

SLOT = "checkout"
MAX_ORDERS = 1000


@dataclass(frozen=True)
class CheckoutAbandoned:
    """The ``[checkout_abandoned]`` section of ``rules.toml``."""

    enabled: bool = True
    after_minutes: float = 60.0


@dataclass(slots=True)
class CheckoutRuleState:
    last_order_ms: int | None = None
    orders: list[int] = field(default_factory=list)  # order times not before the latest checkout (may arrive early)


class CheckoutAbandonedRule(RuleBase):
    name = "checkout_abandoned"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: CheckoutAbandoned) -> None:
        self.enabled = config.enabled
        self.after_ms = round(config.after_minutes * MINUTE_MS)
        self.minutes = f"{config.after_minutes:g}"

    def init(self) -> CheckoutRuleState:
        return CheckoutRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: CheckoutRuleState = state.rules[self.name]
        kind, t = seen.type, seen.t_ms
        if kind == "checkout_started":
            # Orders come on their own topic and may arrive before the checkout that preceded them.
            own.orders = [o for o in own.orders if o >= t]
            if any(o <= t + self.after_ms for o in own.orders):
                return []
            e = seen.event
            context = {"reason": f"checkout started, no order within {self.minutes} min"}
            if e.cart_value is not None:
                context["cart_value"] = e.cart_value
                context["currency"] = e.currency
            if e.items is not None:
                context["cart_items"] = e.items
            arm(state.timers, Timer(self.name, SLOT, t, seen.event_id, t + self.after_ms, (), context))
        elif kind == "order_placed":
            if own.last_order_ms is None or t > own.last_order_ms:
                own.last_order_ms = t
            own.orders = sorted([*own.orders, t])[-MAX_ORDERS:]
            cancel(state.timers, is_slot(SLOT), t)
        return []


SPECS = (RuleSpec("checkout_abandoned", CheckoutAbandoned(),
                  lambda section, config: CheckoutAbandonedRule(section)),)
