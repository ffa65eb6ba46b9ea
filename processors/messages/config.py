"""Guard and message parameters: typed defaults, overridden by a TOML file (``messages.toml`` ships them).

Loaded like every processor's parameters (``processors.config_file``): unknown sections or keys,
and values of the wrong type, are refused with their name. Every parameter is documented
in ``messages.toml`` and the triggers README.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from processors.config_file import ConfigError, read_toml, sections_from_dict
from processors.features.base import HOUR_MS
from schemas.outputs import TriggerType

CHANNELS = ("email", "push", "in_app", "sms")
TRIGGERS: tuple[str, ...] = typing.get_args(TriggerType)


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
class Channels:
    app: tuple[str, ...] = ("push", "in_app", "email", "sms")
    web: tuple[str, ...] = ("email", "push", "in_app", "sms")
    service: tuple[str, ...] = ("email", "sms", "in_app")


#: Cooldown hours of the triggers that have one; any other trigger type has none (0).
COOLDOWN_HOURS = {"cart_abandoned": 24, "browse_abandoned": 72, "checkout_abandoned": 24, "high_intent": 168,
                  "churn_risk": 720, "win_back": 720}
#: Goal events of the triggers that have some; any other trigger type has none.
GOALS = {"cart_abandoned": ("checkout_started", "order_placed"), "checkout_abandoned": ("order_placed",),
         "browse_abandoned": ("add_to_cart", "checkout_started", "order_placed"), "high_intent": ("order_placed",),
         "churn_risk": ("order_placed",),
         "win_back": ("page_view", "product_view", "search", "add_to_cart", "order_placed")}


def per_trigger(name: str, kind: type, defaults: dict[str, Any], missing: Any) -> Any:
    """A frozen dataclass with one field per value of ``TriggerType``: ``defaults``' value, else ``missing``.

    Built from the contract's enum, so a new trigger type has a section key (with the default) without
    a change here; a default naming no trigger type is refused.
    """
    unknown = sorted(set(defaults) - set(TRIGGERS))
    if unknown:
        raise ConfigError(f"{name} defaults name unknown trigger type(s) {unknown}")
    cls = dataclasses.make_dataclass(name, [(t, kind, field(default=defaults.get(t, missing))) for t in TRIGGERS],
                                     frozen=True)
    cls.__module__ = __name__  # pickled and named as processors.messages.config.<name>
    return cls


#: ``[cooldown_hours]``: one value per trigger type (hours; 0: no cooldown).
PerTrigger = per_trigger("PerTrigger", int, COOLDOWN_HOURS, 0)
#: ``[goals]``: per trigger type, the events that cancel a message held back by quiet hours.
Goals = per_trigger("Goals", tuple, GOALS, ())


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
