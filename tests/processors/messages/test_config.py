"""Cooldowns and goals per trigger are built from the ``TriggerType`` enum: every trigger type has one, default none."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from processors.config_file import ConfigError
from processors.messages.config import Goals, MessagesConfig, PerTrigger, load_messages_config, per_trigger
from schemas.outputs import TriggerType


def test_every_trigger_type_has_a_cooldown_and_goals_with_the_shipped_defaults() -> None:
    assert [f.name for f in dataclasses.fields(PerTrigger)] == list(typing.get_args(TriggerType))
    assert [f.name for f in dataclasses.fields(Goals)] == list(typing.get_args(TriggerType))
    assert dataclasses.asdict(PerTrigger()) == {
        "cart_abandoned": 24, "browse_abandoned": 72, "checkout_abandoned": 24, "high_intent": 168, "churn_risk": 720,
        "unhappy_customer": 0, "review_request": 0, "welcome": 0, "win_back": 720}
    assert dataclasses.asdict(Goals()) == {
        "cart_abandoned": ("checkout_started", "order_placed"), "browse_abandoned": (
            "add_to_cart", "checkout_started", "order_placed"), "checkout_abandoned": ("order_placed",),
        "high_intent": ("order_placed",), "churn_risk": ("order_placed",), "unhappy_customer": (),
        "review_request": (), "welcome": (),
        "win_back": ("page_view", "product_view", "search", "add_to_cart", "order_placed")}
    shipped = load_messages_config()
    assert (shipped.cooldown_hours, shipped.goals) == (MessagesConfig().cooldown_hours, MessagesConfig().goals)


def test_a_default_for_a_trigger_the_enum_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"PerTrigger defaults name unknown trigger type\(s\) \['price_drop'\]"):
        per_trigger("PerTrigger", int, {"price_drop": 1}, 0)


def test_an_unknown_trigger_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "messages.toml"
    path.write_text("[cooldown_hours]\nprice_drop = 1\n")
    with pytest.raises(ConfigError, match=r"\[cooldown_hours\] unknown parameter 'price_drop' \(known: "
                                          r"browse_abandoned, cart_abandoned, checkout_abandoned, churn_risk, "
                                          r"high_intent, review_request, unhappy_customer, welcome, win_back\)"):
        load_messages_config(path)
