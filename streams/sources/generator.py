"""Synthetic traffic with realistic journeys, seeded and reproducible.

Customers arrive over the first part of the period on a channel (with a UTM source for
paid and e-mail traffic), browse in sessions (landing page, searches, product views
over a catalogue with categories, brands and prices), fill and sometimes abandon carts,
start checkouts and buy (placed -> paid -> shipped -> delivered, a few cancelled or
refunded), talk to support (positive or negative, depending on how their orders went)
and change their consent. Each customer has a latent churn time after which they never
return (``None`` for customers who stay): that ground truth is kept in
:attr:`Generator.truth` for evaluating churn models.

The same arguments give byte-identical output; nothing reads the wall clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.registry import TOPIC_OF_TYPE
from streams.sources.record import SourceRecord

CATEGORIES = ["shoes", "electronics", "books", "home", "beauty", "toys", "sports", "fashion"]
BRANDS = ["acme", "zenith", "nova", "orbit", "pioneer", "lumen"]
CHANNELS = [("web", None, 35), ("web", "google", 20), ("app", None, 20), ("web", "newsletter", 10),
            ("mobile_web", "facebook", 10), ("marketplace", None, 5)]
POSITIVE = ["Thanks, that was quick and helpful!", "Great service, my order arrived early.",
            "Love the product, thank you", "Perfect, problem solved. Thanks a lot!"]
NEGATIVE = ["My order is late again, this is terrible.", "Still waiting for a refund, worst service ever.",
            "The item arrived broken and nobody answers.", "Really disappointed, wrong item delivered."]
QUESTIONS = ["Where is my order?", "Can I change my delivery address?", "Do you have this in size 42?"]
AGENT = ["Sorry to hear that, let me check.", "Thanks for reaching out, I am on it.", "Done, anything else?"]


@dataclass(frozen=True)
class Product:
    product_id: str
    category: str
    brand: str
    price: float


@dataclass
class GeneratedTruth:
    """Latent facts the generator knows: who churns and when (event time)."""

    churn_at: dict[str, datetime | None] = field(default_factory=dict)
    signup_at: dict[str, datetime] = field(default_factory=dict)


class Generator:
    """``Generator(customers, days, seed).records()``; ``.truth`` is filled as records are made."""

    def __init__(self, customers: int = 2000, days: int = 30, seed: int = 7,
                 start: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> None:
        self.customers, self.days, self.seed, self.start = customers, days, seed, start
        self.truth = GeneratedTruth()
        rng = random.Random(seed)
        self.catalog = [Product(f"sku-{i:05d}", rng.choice(CATEGORIES), rng.choice(BRANDS),
                                round(rng.lognormvariate(3.3, 0.8), 2)) for i in range(max(50, customers // 4))]

    def records(self) -> list[SourceRecord]:
        events: list[tuple[datetime, int, dict[str, Any]]] = []
        for n in range(self.customers):
            rng = random.Random(f"{self.seed}/{n}")
            self._customer(rng, f"c{n:06d}", events)
        events.sort(key=lambda item: (item[0], item[1]))
        return [SourceRecord(TOPIC_OF_TYPE[body["type"]], body["customer_id"].encode(), orjson.dumps(body), when)
                for when, _, body in events]

    def _customer(self, rng: random.Random, customer: str, out: list[tuple[datetime, int, dict[str, Any]]]) -> None:
        end = self.start + timedelta(days=self.days)
        signup = self.start + timedelta(seconds=rng.random() * self.days * 0.6 * 86_400)
        churn = signup + timedelta(days=rng.expovariate(1 / 12)) if rng.random() < 0.4 else None
        self.truth.signup_at[customer] = signup
        self.truth.churn_at[customer] = churn
        channel, utm, _ = rng.choices(CHANNELS, weights=[c[2] for c in CHANNELS])[0]
        taste = rng.sample(CATEGORIES, 2)
        sessions_per_day = rng.lognormvariate(-1.2, 0.8)
        counter = iter(range(10**9))

        def emit(when: datetime, body: dict[str, Any]) -> None:
            seq = next(counter)
            body = {"event_id": f"gen-{self.seed}-{customer}-{seq}", "customer_id": customer,
                    "event_time": when.isoformat().replace("+00:00", "Z"), **body}
            out.append((when, seq, {k: v for k, v in body.items() if v is not None}))

        for purpose, share in (("email", 0.8), ("push", 0.4), ("sms", 0.2)):
            if rng.random() < share:
                emit(signup, {"type": "consent_changed", "channel": purpose, "status": "granted"})
        unhappy = False
        t = signup
        session = 0
        while True:
            t += timedelta(days=rng.expovariate(sessions_per_day) if sessions_per_day > 0 else self.days)
            if t >= end or (churn is not None and t >= churn):
                break
            session += 1
            unhappy = self._session(rng, customer, f"{customer}-s{session}", t, channel if session == 1 else "web",
                                    utm if session == 1 else None, taste, emit, unhappy)
            if rng.random() < 0.02:
                emit(t, {"type": "consent_changed", "channel": rng.choice(["email", "sms", "push"]),
                         "status": "withdrawn"})

    def _session(self, rng: random.Random, customer: str, session: str, t: datetime, channel: str,
                 utm: str | None, taste: list[str], emit: Any, unhappy: bool) -> bool:
        def step(seconds: float) -> datetime:
            nonlocal t
            t += timedelta(seconds=seconds)
            return t

        common = {"session_id": session, "channel": channel, "device": rng.choice(["desktop", "mobile", "tablet"])}
        emit(t, {"type": "page_view", "page_url": "/", "utm_source": utm, "utm_medium": "cpc" if utm else None,
                 **common})
        if rng.random() < 0.3:
            emit(step(rng.uniform(5, 60)), {"type": "search", "query": rng.choice(taste), "results": rng.randint(0, 80),
                                            **common})
        cart: dict[str, tuple[Product, int]] = {}
        for _ in range(rng.randint(1, 8)):
            product = self._pick(rng, taste)
            product_fields = {"product_id": product.product_id, "category_id": product.category,
                              "brand": product.brand, "price": product.price, "currency": "EUR", **common}
            emit(step(rng.uniform(10, 240)), {"type": "product_view", **product_fields})
            roll = rng.random()
            if roll < 0.25:
                quantity = rng.choice([1, 1, 1, 2])
                cart[product.product_id] = (product, cart.get(product.product_id, (product, 0))[1] + quantity)
                emit(step(rng.uniform(5, 60)), {"type": "add_to_cart", "quantity": quantity, **product_fields})
            elif roll < 0.30:
                emit(step(rng.uniform(5, 30)), {"type": "add_to_wishlist", **product_fields})
            if cart and rng.random() < 0.08:
                removed = rng.choice(sorted(cart))
                product, quantity = cart.pop(removed)
                emit(step(rng.uniform(5, 30)), {"type": "remove_from_cart", "product_id": removed,
                                                "category_id": product.category, "price": product.price,
                                                "quantity": quantity, **common})
        if cart and rng.random() < 0.55:
            value = round(sum(p.price * q for p, q in cart.values()), 2)
            emit(step(rng.uniform(20, 120)), {"type": "checkout_started", "cart_value": value, "currency": "EUR",
                                              "items": sum(q for _, q in cart.values()), **common})
            if rng.random() < 0.7:
                unhappy = self._order(rng, session, step(rng.uniform(30, 300)), cart, channel, emit)
        if rng.random() < (0.25 if unhappy else 0.05):
            self._chat(rng, customer, session, step(rng.uniform(60, 3600)), unhappy, emit)
        return unhappy

    def _pick(self, rng: random.Random, taste: list[str]) -> Product:
        while True:
            product = rng.choice(self.catalog)
            if product.category in taste or rng.random() < 0.3:
                return product

    def _order(self, rng: random.Random, session: str, t: datetime, cart: dict[str, tuple[Product, int]],
               channel: str, emit: Any) -> bool:
        order_id = f"o-{session}"
        items = [{"product_id": p.product_id, "category_id": p.category, "quantity": q, "unit_price": p.price}
                 for p, q in cart.values()]
        freight = round(rng.choice([0.0, 4.99, 9.99]), 2)
        amount = round(sum(p.price * q for p, q in cart.values()) + freight, 2)
        base = {"order_id": order_id, "currency": "EUR"}
        emit(t, {"type": "order_placed", "items": items, "amount": amount, "freight": freight, "channel": channel,
                 "session_id": session, **base})
        if rng.random() < 0.04:
            emit(t + timedelta(hours=rng.uniform(0.5, 20)), {"type": "order_cancelled", "reason": "customer", **base})
            return False
        paid = t + timedelta(minutes=rng.uniform(1, 30))
        emit(paid, {"type": "order_paid", "amount": amount, "installments": rng.choice([1, 1, 3]),
                    "payment_type": rng.choice(["credit_card", "paypal", "debit_card"]), **base})
        shipped = paid + timedelta(days=rng.uniform(0.3, 2.5))
        emit(shipped, {"type": "order_shipped", **base})
        late = rng.random() < 0.15
        delivered = shipped + timedelta(days=rng.uniform(5, 12) if late else rng.uniform(1, 4))
        emit(delivered, {"type": "order_delivered", **base})
        if rng.random() < (0.2 if late else 0.03):
            emit(delivered + timedelta(days=rng.uniform(1, 10)), {"type": "order_refunded", "amount": amount,
                                                                  "reason": "late" if late else "returned", **base})
        return late

    def _chat(self, rng: random.Random, customer: str, session: str, t: datetime, unhappy: bool, emit: Any) -> None:
        conversation = f"conv-{session}"
        channel = rng.choice(["live_chat", "email"])
        texts = NEGATIVE if unhappy else (POSITIVE + QUESTIONS)
        for turn in range(rng.randint(2, 4)):
            role = "customer" if turn % 2 == 0 else "agent"
            text = rng.choice(texts) if role == "customer" else rng.choice(AGENT)
            emit(t, {"type": "chat_message", "conversation_id": conversation, "sender_role": role, "channel": channel,
                     "text": text, "language": "en"})
            t += timedelta(minutes=rng.uniform(1, 20))


def generate(customers: int = 2000, days: int = 30, seed: int = 7,
             start: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> list[SourceRecord]:
    """The records of ``Generator(customers, days, seed, start)``."""
    return Generator(customers, days, seed, start).records()
