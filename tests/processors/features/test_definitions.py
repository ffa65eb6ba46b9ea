"""Each feature definition on small hand-made histories with known answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from processors.features.config import FeatureConfig
from processors.features.engine import FeatureEngine, default_features
from processors.features.segments import load_segments
from tests.processors.features.events import START, observe, toy_scorer

CONFIG = FeatureConfig()


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def profile(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    engine = FeatureEngine(CONFIG, default_features(CONFIG, toy_scorer, -0.05), load_segments())
    state = engine.new_state("c")
    for i, body in enumerate(bodies):
        engine.apply(state, observe({"event_id": f"e{i}", "customer_id": "c", **body}))
    return engine.values(state)


def cart(kind: str, minutes: float, product: str = "p", quantity: int = 1, price: float | None = 10.0) -> dict:
    return {"type": kind, "event_time": at(minutes), "product_id": product, "quantity": quantity, "price": price}


def order(minutes: float, amount: float | None = 50.0) -> dict:
    return {"type": "order_placed", "event_time": at(minutes), "order_id": f"o{minutes}", "amount": amount}


def test_cart_applies_lines_in_event_time_whatever_the_arrival_order() -> None:
    in_order = profile([cart("add_to_cart", 0, quantity=2), cart("remove_from_cart", 5)])
    reversed_arrival = profile([cart("remove_from_cart", 5), cart("add_to_cart", 0, quantity=2)])
    assert in_order["cart_items"] == reversed_arrival["cart_items"] == 1
    assert in_order["cart_value"] == reversed_arrival["cart_value"] == 10.0
    # a remove before any add is floored at zero, in event-time order
    assert profile([cart("add_to_cart", 10), cart("remove_from_cart", 5, quantity=3)])["cart_items"] == 1


def test_an_order_empties_the_cart_of_everything_before_it() -> None:
    p = profile([cart("add_to_cart", 0), cart("add_to_cart", 1, "q", price=None), order(2), cart("add_to_cart", 3)])
    assert (p["cart_items"], p["cart_products"], p["cart_unpriced_items"]) == (1, 1, 0)
    late_order = profile([cart("add_to_cart", 0), cart("add_to_cart", 3), order(2)])
    assert late_order["cart_items"] == 1 and late_order["cart_since_ms"] == late_order["cart_last_change_ms"]


def test_checkout_open_until_an_order_follows_it() -> None:
    checkout = {"type": "checkout_started", "event_time": at(1)}
    assert profile([cart("add_to_cart", 0), checkout])["stage"] == "checkout"
    done = profile([cart("add_to_cart", 0), checkout, order(2)])
    assert not done["checkout_open"] and done["stage"] == "first_time_buyer"


def test_activity_windows_are_bucket_aligned() -> None:
    views = [{"type": "product_view", "event_time": at(m), "product_id": "p"} for m in (0, 30, 61, 119.5, 120)]
    p = profile(views)
    # as of minute 120: the 1 h window holds minutes 61..120
    assert (p["product_views_1h"], p["product_views_24h"], p["product_views_total"]) == (3, 5, 5)


def test_sessions_split_at_the_gap() -> None:
    views = [{"type": "page_view", "event_time": at(m)} for m in (0, 10, 45, 200, 210, 215)]
    p = profile(views)
    assert (p["sessions"], p["bounce_sessions"], p["session_depth"], p["session_length_s"]) == (3, 1, 3, 900.0)


def test_orders_rfm() -> None:
    day = 24 * 60
    p = profile([order(0, 100.0), order(10 * day, None), order(40 * day, 20.5),
                 {"type": "order_refunded", "event_time": at(41 * day), "order_id": "x", "amount": 20.5}])
    assert (p["orders_total"], p["revenue_total"], p["average_order_value"]) == (3, 120.5, 60.25)
    assert (p["orders_30d"], p["revenue_30d"], p["orders_90d"]) == (1, 20.5, 3)
    assert p["days_between_orders"] == 20.0 and p["recency_days"] == 1.0
    assert (p["orders_refunded"], p["refunded_total"]) == (1, 20.5)


def test_service_streak_and_unresolved() -> None:
    def msg(minutes: float, role: str, text: str, conv: str = "k") -> dict:
        return {"type": "chat_message", "event_time": at(minutes), "conversation_id": conv, "sender_role": role,
                "channel": "live_chat", "text": text}

    p = profile([msg(0, "customer", "great"), msg(1, "customer", "terrible"), msg(2, "agent", "sorry"),
                 msg(3, "customer", "worst", "k2")])
    assert (p["negative_streak"], p["conversations"], p["unresolved_conversations"]) == (2, 2, 1)
    assert p["last_sentiment"] == -0.8 and "unhappy" in p["segments"]
