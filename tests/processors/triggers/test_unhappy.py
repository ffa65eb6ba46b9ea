"""Unhappy customer: a service escalation with the customer's history summary."""

from __future__ import annotations

from schemas.triggers import TriggerEvent
from tests.processors.triggers.helpers import at, event, of, profile, run

NEGATIVE = "this is terrible, worst service ever, still waiting"
MILD = "the package is late"  # negative, but not below -0.5 on its own
FINE = "thanks, all good"


def chat(t: int, text: str, role: str = "customer", conversation: str = "k1", **extra):  # type: ignore[no-untyped-def]
    return event("chat_message", t, text=text, sender_role=role, conversation_id=conversation, **extra)


def test_one_very_negative_message_escalates_with_history() -> None:
    triggers = run([event("order_placed", at(0), order_id="o1", amount=50.0, currency="EUR",
                          items=[{"product_id": "p1"}, {"product_id": "p2"}]),
                    event("order_delivered", at(60), order_id="o1"),
                    event("order_placed", at(100), order_id="o2", amount=20.0, currency="EUR"),
                    profile(at(101), stage="repeat_buyer", segments=("loyal",), sentiment_7d=-0.2),
                    chat(at(120), NEGATIVE, event_id="m1")])
    fired = of(triggers, "unhappy_customer")
    assert len(fired) == 1
    t = fired[0]
    assert t["service"] is True and t["source_event_id"] == "m1"
    assert NEGATIVE not in str(t), "the customer's words are never copied into the trigger"
    history = t["history"]
    assert [o["order_id"] for o in history["last_orders"]] == ["o2", "o1"]
    assert history["last_orders"][1]["status"] == "delivered" and history["last_orders"][1]["items"] == 2
    assert history["orders_total"] == 2 and history["revenue_total"] == 70.0
    assert history["average_order_value"] == 35.0
    assert history["open_issues"] == 1 and history["open_conversations"] == ["k1"]
    assert history["sentiment_trend"][-1] < -0.5 and history["sentiment_7d"] == -0.2
    assert history["stage"] == "repeat_buyer" and history["segments"] == ["loyal"]
    TriggerEvent.model_validate(t)


def test_a_negative_streak_escalates_once_per_conversation() -> None:
    triggers = run([chat(at(0), MILD), chat(at(1), "agent reply", role="agent"), chat(at(2), MILD, event_id="m2"),
                    chat(at(3), NEGATIVE)])
    fired = of(triggers, "unhappy_customer")
    assert [t["source_event_id"] for t in fired] == ["m2"]
    assert fired[0]["context"]["negative_streak"] == 2


def test_a_positive_message_breaks_the_streak_and_agents_do_not_count() -> None:
    assert of(run([chat(at(0), MILD), chat(at(1), FINE), chat(at(2), MILD)]), "unhappy_customer") == []
    assert of(run([chat(at(0), NEGATIVE, role="agent")]), "unhappy_customer") == []


def test_a_new_conversation_can_escalate_again() -> None:
    fired = of(run([chat(at(0), NEGATIVE, conversation="k1"), chat(at(5), NEGATIVE, conversation="k2")]),
               "unhappy_customer")
    assert [t["context"]["conversation_id"] for t in fired] == ["k1", "k2"]


def test_an_answered_conversation_is_not_an_open_issue() -> None:
    triggers = run([chat(at(0), FINE, conversation="old"), chat(at(1), "answer", role="agent", conversation="old"),
                    chat(at(2), NEGATIVE, conversation="new")])
    assert of(triggers, "unhappy_customer")[0]["history"]["open_conversations"] == ["new"]
