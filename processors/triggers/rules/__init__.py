"""The trigger rules, one per module; ``default_rules`` builds them from a ``RulesConfig``."""

from __future__ import annotations

from processors.triggers.config import RulesConfig
from processors.triggers.rules.bands import BandCrossingRule
from processors.triggers.rules.base import Rule
from processors.triggers.rules.browse import BrowseAbandonedRule
from processors.triggers.rules.cart import CartAbandonedRule
from processors.triggers.rules.checkout import CheckoutAbandonedRule
from processors.triggers.rules.post_purchase import ReviewRequestRule, WelcomeRule
from processors.triggers.rules.unhappy import UnhappyCustomerRule
from processors.triggers.rules.win_back import WinBackRule


def default_rules(config: RulesConfig) -> list[Rule]:
    """Every enabled rule, in a fixed order (the order immediate triggers of one event come out)."""
    rules: list[Rule] = [
        CartAbandonedRule(config.cart_abandoned), BrowseAbandonedRule(config.browse_abandoned, config.lateness_ms),
        CheckoutAbandonedRule(config.checkout_abandoned),
        BandCrossingRule("high_intent", config.high_intent, requires_order=False),
        BandCrossingRule("churn_risk", config.churn_risk, requires_order=True),
        UnhappyCustomerRule(config.unhappy_customer), ReviewRequestRule(config.review_request),
        WelcomeRule(config.welcome), WinBackRule(config.win_back),
    ]
    return [rule for rule in rules if rule.enabled]


__all__ = ["Rule", "default_rules"]
