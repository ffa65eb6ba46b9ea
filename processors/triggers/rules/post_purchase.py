"""Post-purchase: a review request ``after_days`` after delivery, and a welcome for the first purchase.

Review request: an ``order_delivered`` arms a timer per order; a refund or cancellation
of that order, or a review message (a customer chat message on the ``review`` channel)
inside the period, cancels it. Welcome: the customer's first ``order_placed`` (none
seen before, and the profile counts no earlier one) fires at once, once per customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from processors.features.base import DAY_MS, Observed
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm, cancel, is_slot

SLOT = "review"


@dataclass(frozen=True)
class ReviewRequest:
    """The ``[review_request]`` section of ``rules.toml``."""

    enabled: bool = True
    after_days: int = 7


@dataclass(frozen=True)
class Welcome:
    """The ``[welcome]`` section of ``rules.toml``."""

    enabled: bool = True


class ReviewRequestRule(RuleBase):
    name = "review_request"
    topics: ClassVar[frozenset[str]] = frozenset({"orders", "chat"})

    def __init__(self, config: ReviewRequest) -> None:
        self.enabled = config.enabled
        self.after_ms = config.after_days * DAY_MS
        self.days = config.after_days

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        kind, t, e = seen.type, seen.t_ms, seen.event
        if kind == "order_delivered":
            order = state.history.orders.get(e.order_id)
            products = order.products if order else ()
            arm(state.timers, Timer(self.name, f"{SLOT}:{e.order_id}", t, seen.event_id, t + self.after_ms, products,
                                    {"reason": f"order delivered {self.days} day(s) ago", "order_id": e.order_id}))
        elif kind in ("order_refunded", "order_cancelled"):
            cancel(state.timers, lambda slot: slot == f"{SLOT}:{e.order_id}", t)
        elif kind == "chat_message" and e.channel == "review" and e.sender_role == "customer":
            cancel(state.timers, is_slot(SLOT), t)
        return []


@dataclass(slots=True)
class WelcomeRuleState:
    welcomed: bool = False


class WelcomeRule(RuleBase):
    name = "welcome"
    topics: ClassVar[frozenset[str]] = frozenset({"orders"})

    def __init__(self, config: Welcome) -> None:
        self.enabled = config.enabled

    def init(self) -> WelcomeRuleState:
        return WelcomeRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: WelcomeRuleState = state.rules[self.name]
        if seen.type != "order_placed" or own.welcomed:
            return []
        own.welcomed = True
        if state.history.orders_placed > 1 or state.profile_orders(seen.t_ms) > 0:
            return []  # not the first purchase (the history counts this order; a profile from before it, none)
        e = seen.event
        context = {"order_id": e.order_id, "amount": e.amount, "currency": e.currency}
        return [Fired(self.name, seen.t_ms, seen.event_id, "event", "first purchase",
                      tuple(item.product_id for item in e.items), context)]


SPECS = (
    RuleSpec("review_request", ReviewRequest(), lambda section, config: ReviewRequestRule(section)),
    RuleSpec("welcome", Welcome(), lambda section, config: WelcomeRule(section)),
)
