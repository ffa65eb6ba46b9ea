"""Rule parameters: typed defaults, overridden by a TOML file (``rules.toml`` ships the defaults).

Every parameter is documented in ``rules.toml`` and in this package's ``README.md``. A file
naming an unknown rule or parameter, or giving a value of the wrong type, is refused with the
name, so a typo cannot silently keep a default (``processors.config_file.ConfigError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.config_file import read_toml, sections_from_dict

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Timers:
    allowed_lateness_minutes: int = 60
    live_delay_seconds: int = 60


@dataclass(frozen=True)
class CartAbandoned:
    enabled: bool = True
    after_minutes: float = 30.0  # a float, so a test or a demo can use seconds (0.05 = 3 s)


@dataclass(frozen=True)
class BrowseAbandoned:
    enabled: bool = True
    session_gap_minutes: int = 30
    min_product_views: int = 2
    max_products: int = 10


@dataclass(frozen=True)
class CheckoutAbandoned:
    enabled: bool = True
    after_minutes: float = 60.0


@dataclass(frozen=True)
class BandCrossing:
    enabled: bool = True
    model: str = "purchase_propensity"
    band: str = "high"
    skip_cold_start: bool = True


@dataclass(frozen=True)
class UnhappyCustomer:
    enabled: bool = True
    sentiment_below: float = -0.5
    negative_streak: int = 2
    negative_below: float = -0.05
    history_orders: int = 5
    sentiment_trend: int = 10


@dataclass(frozen=True)
class ReviewRequest:
    enabled: bool = True
    after_days: int = 7


@dataclass(frozen=True)
class Welcome:
    enabled: bool = True


@dataclass(frozen=True)
class WinBack:
    enabled: bool = True
    after_days: int = 60


@dataclass(frozen=True)
class RulesConfig:
    """All rule parameters; ``load_rules`` builds one from a file."""

    timers: Timers = field(default_factory=Timers)
    cart_abandoned: CartAbandoned = field(default_factory=CartAbandoned)
    browse_abandoned: BrowseAbandoned = field(default_factory=BrowseAbandoned)
    checkout_abandoned: CheckoutAbandoned = field(default_factory=CheckoutAbandoned)
    high_intent: BandCrossing = field(default_factory=BandCrossing)
    churn_risk: BandCrossing = field(default_factory=lambda: BandCrossing(model="churn"))
    unhappy_customer: UnhappyCustomer = field(default_factory=UnhappyCustomer)
    review_request: ReviewRequest = field(default_factory=ReviewRequest)
    welcome: Welcome = field(default_factory=Welcome)
    win_back: WinBack = field(default_factory=WinBack)

    @property
    def lateness_ms(self) -> int:
        return self.timers.allowed_lateness_minutes * MINUTE_MS

    @property
    def live_delay_ms(self) -> int:
        return self.timers.live_delay_seconds * 1000


def rules_from_dict(data: dict[str, Any]) -> RulesConfig:
    """A config from parsed TOML: known sections and keys only, values of the default's type."""
    return sections_from_dict(RulesConfig(), data)


def load_rules(path: Path | None = None) -> RulesConfig:
    """Rules from ``path``, or the shipped ``processors/triggers/rules.toml``."""
    return rules_from_dict(read_toml(path, "processors.triggers", "rules.toml"))
