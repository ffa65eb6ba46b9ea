"""Templates per trigger, channel and locale, rendered with the customer's content; channel by habit."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from processors.messages.config import CHANNELS
from processors.messages.templates import Templates
from schemas.outputs import TriggerType
from tests.processors.messages.helpers import Run, consent, decisions, messages, trigger
from tests.processors.triggers.helpers import at, event, profile

TEMPLATES = Templates()
CONTEXT: dict[str, Any] = {"cart_items": 3, "cart_value": 59.9, "currency": "EUR", "order_id": "o-77",
                           "inactive_days": 60}
HISTORY = {"last_orders": [{"order_id": "o-77", "status": "delivered", "status_at": "2024-03-01T10:00:00Z"}]}


def variables(service: bool) -> dict[str, Any]:
    return {"products": ["p1", "p2"], "recommendations": [] if service else ["p9"], "service": service,
            "context": CONTEXT, "top_categories": ["shoes", "bags"], "base_url": "https://shop.test",
            "history": HISTORY, "url": lambda p: f"https://shop.test/p/{p}"}


@pytest.mark.parametrize("locale", ["en", "pt"])
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", get_args(TriggerType))
def test_every_trigger_renders_on_every_channel_in_every_locale(kind: str, channel: str, locale: str) -> None:
    service = kind == "unhappy_customer"
    rendered = TEMPLATES.render(kind, channel, locale, variables(service))
    assert rendered.template == f"{locale}/{kind}.j2"
    assert rendered.body and "{{" not in rendered.body and "{%" not in rendered.body
    assert (rendered.subject is None) == (channel == "sms")
    if channel == "email":
        assert rendered.body.startswith("Hello," if locale == "en" else "Olá,")
        assert "https://shop.test/p/p9" in rendered.body or service
    if channel == "sms":
        assert rendered.body.endswith("Reply STOP to opt out." if locale == "en" else "Responda SAIR para cancelar.") \
            or service


def test_the_cart_email_with_the_customers_content_exactly() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-60)), profile(at(-60), top_categories="shoes,bags"),
             event("product_view", at(-50), product_id="p7", category_id="shoes"),
             event("product_view", at(-49), product_id="p8", category_id="shoes"))
    (message,) = messages(run.feed(trigger("cart_abandoned", at(0), products=("p1", "p2"),
                                           context={"cart_items": 2})))
    assert message["subject"] == "You left something in your cart" and message["title"] is None
    assert message["template"] == "en/cart_abandoned.j2" and message["locale"] == "en"
    assert message["recommendations"] == ["p8", "p7"]  # a reminder shows what they looked at first
    assert message["body"] == (
        "Hello,\n\nYou still have 2 item(s) in your cart. We kept them for you: complete your order whenever you are "
        "ready.\n\nIn your cart:\n- https://shop.example.com/p/p1\n- https://shop.example.com/p/p2\n\n"
        "You may also like:\n- https://shop.example.com/p/p8\n- https://shop.example.com/p/p7\n\n--\n"
        "You receive this because you agreed to hear from us. Unsubscribe or change your preferences: "
        "https://shop.example.com/preferences")


def test_a_portuguese_speaker_gets_the_pt_template_with_top_categories() -> None:
    run = Run()
    run.feed(profile(at(-60), top_categories="calcados,bolsas"),
             event("chat_message", at(-30), text="Olá, meu pedido não chegou ainda", language="pt"))
    (message,) = messages(run.feed(trigger("high_intent", at(0))))
    assert (message["locale"], message["template"], message["channel"]) == ("pt", "pt/high_intent.j2", "in_app")
    assert message["title"] == "Escolhidos para você"
    assert "de calcados, bolsas." in message["body"]


def test_an_app_customer_gets_push_first_when_push_is_granted() -> None:
    run = Run()
    run.feed(consent("push", "granted", at(-60)), consent("email", "granted", at(-60)),
             *(event("page_view", at(-50 + i), channel="app") for i in range(3)),
             event("page_view", at(-40), channel="web"))
    out = run.feed(trigger("browse_abandoned", at(0), products=("p1",)))
    assert decisions(out)[2:5] == [("consent", "passed", "push"), ("frequency_cap", "passed", "push"),
                                   ("channel", "passed", "push")]
    (message,) = messages(out)
    assert message["title"] == "Still looking? Here is what caught your eye" and message["subject"] is None
    assert message["body"].startswith("Still thinking about it?")


def test_a_web_customer_gets_email_first() -> None:
    run = Run()
    run.feed(consent("push", "granted", at(-60)), consent("email", "granted", at(-60)),
             event("page_view", at(-50), channel="app"), event("page_view", at(-40), channel="web"))
    assert messages(run.feed(trigger("browse_abandoned", at(0))))[0]["channel"] == "email"


def test_the_service_escalation_names_the_order_from_the_history() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-60)))
    history = {"last_orders": [{"order_id": "o-9", "status": "shipped", "status_at": "2024-03-03T10:00:00Z"}],
               "open_issues": 1}
    (message,) = messages(run.feed(trigger("unhappy_customer", at(0), service=True, history=history)))
    assert "including your order o-9," in message["body"]
