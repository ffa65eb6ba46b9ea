"""Guard and message parameters: typed defaults, overridden by a TOML file (``messages.toml`` ships them).

Loaded like every processor's parameters (``processors.config_file``): unknown sections or keys,
and values of the wrong type, are refused with their name. Every parameter is documented
in ``messages.toml`` and the triggers README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from processors.config_file import ConfigError, read_toml, sections_from_dict
from processors.triggers.config import HOUR_MS

CHANNELS = ("email", "push", "in_app", "sms")


@dataclass(frozen=True)
class Defaults:
    time_zone: str = "UTC"
    locale: str = "en"
    base_url: str = "https://shop.example.com"
    recommendations: int = 4


@dataclass(frozen=True)
class Holdout:
    share: float = 0.1
    salt: str = "journey-holdout-v1"


@dataclass(frozen=True)
class Consent:
    assumed_granted: tuple[str, ...] = ("in_app",)


@dataclass(frozen=True)
class QuietHours:
    enabled: bool = True
    start: str = "21:00"
    end: str = "08:00"
    channels: tuple[str, ...] = ("email", "push", "sms")


@dataclass(frozen=True)
class Caps:
    email: tuple[Any, ...] = ((2, 24), (5, 168))
    push: tuple[Any, ...] = ((3, 24), (10, 168))
    sms: tuple[Any, ...] = ((1, 24), (2, 168))
    in_app: tuple[Any, ...] = ((5, 24),)


@dataclass(frozen=True)
class PerTrigger:
    """One value per trigger type (cooldowns in hours)."""

    cart_abandoned: int = 24
    browse_abandoned: int = 72
    checkout_abandoned: int = 24
    high_intent: int = 168
    churn_risk: int = 720
    unhappy_customer: int = 0
    review_request: int = 0
    welcome: int = 0
    win_back: int = 720


@dataclass(frozen=True)
class Channels:
    app: tuple[str, ...] = ("push", "in_app", "email", "sms")
    web: tuple[str, ...] = ("email", "push", "in_app", "sms")
    service: tuple[str, ...] = ("email", "sms", "in_app")


@dataclass(frozen=True)
class Goals:
    cart_abandoned: tuple[str, ...] = ("checkout_started", "order_placed")
    checkout_abandoned: tuple[str, ...] = ("order_placed",)
    browse_abandoned: tuple[str, ...] = ("add_to_cart", "checkout_started", "order_placed")
    high_intent: tuple[str, ...] = ("order_placed",)
    churn_risk: tuple[str, ...] = ("order_placed",)
    win_back: tuple[str, ...] = ("page_view", "product_view", "search", "add_to_cart", "order_placed")
    unhappy_customer: tuple[str, ...] = ()
    review_request: tuple[str, ...] = ()
    welcome: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendations:
    window_minutes: int = 60
    view_weight: float = 1.0
    buy_weight: float = 3.0
    max_items: int = 50_000
    max_neighbors: int = 30
    category_items: int = 20
    recent_items: int = 30


@dataclass(frozen=True)
class MessagesConfig:
    defaults: Defaults = field(default_factory=Defaults)
    holdout: Holdout = field(default_factory=Holdout)
    consent: Consent = field(default_factory=Consent)
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    caps: Caps = field(default_factory=Caps)
    cooldown_hours: PerTrigger = field(default_factory=PerTrigger)
    channels: Channels = field(default_factory=Channels)
    goals: Goals = field(default_factory=Goals)
    recommendations: Recommendations = field(default_factory=Recommendations)

    def caps_of(self, channel: str) -> list[tuple[int, int]]:
        """(max messages, window ms) pairs of a channel."""
        return [(int(n), int(hours) * HOUR_MS) for n, hours in getattr(self.caps, channel)]

    def cooldown_ms(self, trigger: str) -> int:
        return int(getattr(self.cooldown_hours, trigger, 0)) * HOUR_MS

    def goals_of(self, trigger: str) -> tuple[str, ...]:
        return tuple(getattr(self.goals, trigger, ()))


def _clock(section: str, text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"[{section}] {text!r} is not a time of day like 21:00") from None


def check(config: MessagesConfig) -> MessagesConfig:
    """Refuse values that parse but cannot work (unknown channels, bad caps, shares outside 0..1)."""
    if not 0 <= config.holdout.share <= 1:
        raise ConfigError("[holdout] share must be within 0..1")
    _clock("quiet_hours", config.quiet_hours.start)
    _clock("quiet_hours", config.quiet_hours.end)
    named = [*config.consent.assumed_granted, *config.quiet_hours.channels, *config.channels.app,
             *config.channels.web, *config.channels.service]
    unknown = sorted(set(named) - set(CHANNELS))
    if unknown:
        raise ConfigError(f"unknown channel(s) {unknown} (known: {', '.join(CHANNELS)})")
    for channel in CHANNELS:
        for pair in getattr(config.caps, channel):
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(v, int) and v > 0
                                                                             for v in pair)):
                raise ConfigError(f"[caps] {channel}: each cap is [max messages, window hours], positive integers")
    return config


def load_messages_config(path: Path | None = None) -> MessagesConfig:
    """Parameters from ``path``, or the shipped ``processors/messages/messages.toml``."""
    return check(sections_from_dict(MessagesConfig(), read_toml(path, "processors.messages", "messages.toml")))
