"""Parameters of the feature definitions; every default here is documented in the README."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeatureConfig:
    #: Events older than (newest event of the same topic for this customer - lateness) are late (per topic and
    #: origin for events the identity stage re-keyed onto the customer: processors/event_time.py).
    allowed_lateness_ms: int = 3_600_000
    #: Inactivity that ends a session.
    session_gap_ms: int = 30 * 60_000
    #: Cart lines older than this (event time) have expired.
    cart_expiry_ms: int = 30 * 86_400_000
    #: Activity windows at minute granularity (window ends at the as-of minute, inclusive).
    minute_windows: dict[str, int] = field(default_factory=lambda: {"1h": 60, "24h": 1440})
    #: Activity windows at hour granularity.
    hour_windows: dict[str, int] = field(default_factory=lambda: {"7d": 168, "30d": 720})
    #: Order windows in days.
    order_windows_days: tuple[int, ...] = (30, 90, 365)
    #: Preference decay half-life in days, and how far back preferences look.
    preference_half_life_days: float = 14.0
    preference_horizon_days: int = 90
    preference_top: int = 3
    #: Service: rolling sentiment window, and how long a conversation can stay unresolved.
    sentiment_window_days: int = 7
    conversation_horizon_days: int = 30
    #: Journey stage: a buyer whose latest order is this many days old is at risk, then lapsed.
    at_risk_days: int = 60
    lapsed_days: int = 180
