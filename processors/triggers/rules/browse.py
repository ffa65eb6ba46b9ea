"""Browse abandoned: a session with at least ``min_product_views`` product views and no cart.

A session is the customer's clickstream with gaps of at most ``session_gap_minutes``; it
ends when that much time passes without a clickstream event, and the trigger fires then
(at last event + gap). An add to cart, a checkout or an order in the session cancels it.
Sessions follow the events in arrival order (per customer they arrive in time order from
every source; a late event joins the session it arrives in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from processors.features.base import Observed
from processors.triggers.config import MINUTE_MS, BrowseAbandoned
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm, cancel, is_slot

SLOT = "browse"
GOALS = frozenset({"add_to_cart", "checkout_started", "order_placed"})


@dataclass(slots=True)
class BrowseRuleState:
    last_ms: int | None = None
    views: int = 0
    products: list[str] = field(default_factory=list)  # distinct, newest last (bounded)
    converted: bool = False


class BrowseAbandonedRule(RuleBase):
    name = "browse_abandoned"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: BrowseAbandoned) -> None:
        self.enabled = config.enabled
        self.gap_ms = config.session_gap_minutes * MINUTE_MS
        self.min_views = config.min_product_views
        self.max_products = config.max_products

    def init(self) -> BrowseRuleState:
        return BrowseRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own: BrowseRuleState = state.rules[self.name]
        kind, t = seen.type, seen.t_ms
        if seen.topic == "clickstream":
            if own.last_ms is None or t > own.last_ms + self.gap_ms:
                own.views, own.products, own.converted = 0, [], False  # a new session
            own.last_ms = t if own.last_ms is None else max(own.last_ms, t)
            if kind == "product_view":
                own.views += 1
                product = seen.event.product_id
                if product in own.products:
                    own.products.remove(product)
                own.products.append(product)
                del own.products[:-self.max_products]
        if kind in GOALS:
            own.converted = True
            cancel(state.timers, is_slot(SLOT), t)
            return []
        if seen.topic == "clickstream" and not own.converted and own.views >= self.min_views:
            assert own.last_ms is not None
            arm(state.timers, Timer(
                self.name, SLOT, own.last_ms, seen.event_id, own.last_ms + self.gap_ms,
                tuple(reversed(own.products)),
                {"reason": f"{own.views} product view(s) in a session and nothing added to the cart",
                 "product_views": own.views}))
        return []
