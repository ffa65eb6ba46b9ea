"""Varied synthetic events over every input topic, for feature unit and conformance tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.features.base import Observed
from schemas.registry import INPUT_TOPICS, TOPIC_OF_TYPE

START = datetime(2024, 3, 1, tzinfo=UTC)
TEXTS = ["thanks, great service", "still waiting, this is terrible", "where is my order?", "ok", "worst ever"]


def observe(body: dict[str, Any]) -> Observed:
    topic = TOPIC_OF_TYPE[body["type"]]
    return Observed.of(topic, INPUT_TOPICS[topic].adapter.validate_python(body))


def journey_events(seed: int, customers: int = 4, per_customer: int = 150, span_days: int = 45) -> list[Observed]:
    """Events in event-time order: browsing, carts, checkouts, orders and their lifecycle, chats."""
    rng = random.Random(seed)
    out = []
    n = 0
    for c in range(customers):
        customer = f"cust-{c}"
        t = START + timedelta(minutes=rng.randint(0, 600))
        for _ in range(per_customer):
            t += timedelta(seconds=rng.choice([5, 40, 300, 1500, 2400, 7200, 86_400, 5 * 86_400]) * rng.random())
            if t > START + timedelta(days=span_days):
                break
            n += 1
            base = {"event_id": f"ev-{n}", "customer_id": customer, "event_time": t.isoformat()}
            product = f"p{rng.randint(1, 6)}"
            category = f"cat{rng.randint(1, 4)}"
            kind = rng.choices(
                ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "add_to_wishlist",
                 "checkout_started", "order_placed", "order_delivered", "order_cancelled", "order_refunded", "chat"],
                weights=[6, 10, 3, 4, 2, 1, 2, 2, 1, 1, 1, 3])[0]
            price = rng.choice([None, 9.99, 25.5, 120.0])
            if kind in ("product_view", "add_to_cart", "remove_from_cart", "add_to_wishlist"):
                body = {**base, "type": kind, "product_id": product, "category_id": category,
                        "brand": rng.choice([None, "acme", "zenith"]), "price": price,
                        "utm_source": rng.choice([None, "ads", "mail"]), "channel": rng.choice(["web", "app"])}
                if kind in ("add_to_cart", "remove_from_cart"):
                    body["quantity"] = rng.randint(1, 3)
            elif kind == "page_view":
                body = {**base, "type": kind, "utm_source": rng.choice([None, "ads"])}
            elif kind == "search":
                body = {**base, "type": kind, "query": "shoes"}
            elif kind == "checkout_started":
                body = {**base, "type": kind, "cart_value": 10.0}
            elif kind == "order_placed":
                body = {**base, "type": kind, "order_id": f"o{n}", "amount": rng.choice([None, 19.9, 250.0, 33.33]),
                        "items": [{"product_id": product, "category_id": category, "unit_price": price}]}
            elif kind.startswith("order_"):
                body = {**base, "type": kind, "order_id": f"o{n - 1}", "amount": 5.0}
            else:
                body = {**base, "type": "chat_message", "conversation_id": f"conv-{c}-{rng.randint(1, 3)}",
                        "sender_role": rng.choice(["customer", "customer", "agent"]), "channel": "live_chat",
                        "text": rng.choice(TEXTS)}
            out.append(observe(body))
    out.sort(key=lambda o: (o.t_ms, o.event_id))
    return out


def shuffled_within(events: list[Observed], window_ms: int, seed: int) -> list[Observed]:
    """The same events, shuffled inside consecutive event-time chunks of ``window_ms``."""
    rng = random.Random(seed)
    chunks: dict[int, list[Observed]] = {}
    for e in events:
        chunks.setdefault(e.t_ms // window_ms, []).append(e)
    out = []
    for key in sorted(chunks):
        chunk = chunks[key]
        rng.shuffle(chunk)
        out.extend(chunk)
    return out


def toy_scorer(text: str, language: str | None) -> float:
    """A deterministic stand-in scorer for pure-logic tests."""
    return -0.8 if any(w in text for w in ("terrible", "worst", "waiting")) else 0.6
