"""Synthetic shop traffic with realistic customer journeys, seeded and reproducible.

``Generator(customers, days, seed, start).records()`` (or :func:`generate`) gives every
input event type in event-time order (``streams.sources.generator_stream.stream`` gives the same
records as a stream, without holding them all: what ``journey run`` feeds):

- Customers arrive over the first 60% of the period on an acquisition channel (direct,
  paid search, newsletter, social, app, marketplace), with UTM source, medium and campaign
  for paid, e-mail and social traffic; later visits come back on their home platform,
  sometimes from a newsletter (only while e-mail consent is granted) or retargeting ad.
- Sessions: a landing page view (with the device's time zone), then category pages, searches and product views over a
  catalogue of products with categories, brands and prices, biased to each customer's
  taste; products go into the cart (and sometimes out again) or onto the wishlist.
- Carts: a checkout is started or the cart is left for later (it may survive to the next
  visit, or expire); some checkouts are abandoned.
- Orders (first and repeat): placed -> paid -> shipped -> delivered; a few fail payment or
  are cancelled by the customer (and refunded), some deliveries are late, some orders are
  returned and refunded.
- Support chats (English; customer, agent and sometimes a bot, on live chat or e-mail):
  questions answered politely, praise after a good delivery, complaints after a late
  delivery or a broken item.
- Consent: e-mail, push and SMS marketing granted at sign-up, later withdrawn or granted
  again, withdrawn more often after a complaint.
- Churn: each customer has a latent churn time (``None`` for about 60% who stay); bad
  experiences can bring it forward. After it the customer starts nothing (no sessions,
  orders, chats or consent changes); only orders already placed keep moving (payment,
  shipping, delivery, refunds) and agents may still answer. :attr:`Generator.truth` holds
  the churn and sign-up times for evaluating churn models.

Identities (``identities=IdentityMix(...)``, off by default; ``journey run --identities``): some
customers' first visit is anonymous until they log in (its clickstream carries only an ``anonymous_id``,
then an ``identify`` event links it to the customer, at or after the visit's last anonymous event, and
before its checkout), some pairs of customers share a device (``device_id`` on their clickstream: the
link rules never merge on it), and some customers have two e-mail addresses (``email_hash``: the first
on the customer's first known event, the second on an ``identify`` right after it). Every customer then
carries a ``device_id`` on its clickstream and an ``email_hash``; :attr:`GeneratedTruth.anonymous`,
``devices`` and ``emails`` say who is who. The journeys themselves (times, products, orders) are the
same as without the option: nothing of it draws from the random streams.

Nothing happens at or after ``start + days``. The same arguments give byte-identical
output: each customer draws from its own ``random.Random`` seeded from ``seed`` and the
customer's index, and nothing reads the wall clock or the global random state.

Speed: events are built as dicts and serialized with orjson (no model construction), with
times kept as integer milliseconds: about 110-125k records/s (bytes, sorted) for the
defaults on the 2-core development machine. The tests validate thousands of records of
every type against the contracts.
"""

from __future__ import annotations

import gc
import hashlib
import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import log
from typing import Any, TypeVar

import orjson

from schemas.base import SCHEMA_VERSION
from streams.sources.edge import clean_body
from streams.sources.record import SourceRecord

T = TypeVar("T")
_dumps = orjson.dumps
_UTC_Z = orjson.OPT_UTC_Z
_from_timestamp = datetime.fromtimestamp

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

#: Category -> (median price in EUR, price spread, search terms).
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "shoes": (65.0, 0.45, ("running shoes", "sneakers", "leather boots", "sandals")),
    "electronics": (180.0, 0.8, ("headphones", "usb-c charger", "smartwatch", "bluetooth speaker")),
    "books": (16.0, 0.4, ("crime novel", "cookbook", "python programming", "children's books")),
    "home": (45.0, 0.7, ("bed linen", "coffee maker", "desk lamp", "storage boxes")),
    "beauty": (22.0, 0.5, ("face cream", "shampoo", "perfume", "sunscreen")),
    "toys": (30.0, 0.6, ("lego", "board game", "puzzle", "plush toy")),
    "sports": (55.0, 0.7, ("yoga mat", "dumbbells", "cycling jersey", "tennis racket")),
    "fashion": (40.0, 0.6, ("summer dress", "denim jacket", "wool scarf", "t-shirt")),
}
CATEGORY_NAMES = tuple(CATEGORIES)
BRANDS = ("acme", "zenith", "nova", "orbit", "pioneer", "lumen", "kestrel", "juniper")
#: (weight, platform, utm_source, utm_medium, utm_campaign, referrer) of a customer's first visit.
ACQUISITION: tuple[tuple[int, str, str | None, str | None, str | None, str | None], ...] = (
    (30, "web", None, None, None, None),
    (18, "web", "google", "cpc", "brand_search", "https://www.google.com/"),
    (7, "web", "newsletter", "email", "welcome_series", None),
    (12, "mobile_web", "facebook", "social", "spring_sale", "https://m.facebook.com/"),
    (6, "mobile_web", "instagram", "social", "influencer_collab", "https://l.instagram.com/"),
    (18, "app", None, None, None, None),
    (9, "marketplace", "marketplace", "referral", "partner_listing", None),
)
#: The customers' time zones, sent by their devices on each visit's landing page and by the preference
#: centre with consent changes. Picked from the customer id (no random draw: every other number of a
#: seeded run stays as it was).
TIME_ZONES = ("Europe/Lisbon", "Europe/Berlin", "America/Sao_Paulo", "America/New_York", "Europe/London",
              "Asia/Shanghai", "UTC")
PAYMENTS = (("credit_card", 55), ("paypal", 25), ("debit_card", 12), ("bank_transfer", 5), ("voucher", 3))
QUESTIONS = (
    "Hi, can I change the delivery address of my order?",
    "Do you have these in size 42?",
    "How long does shipping to Austria take?",
    "Can I pay with PayPal?",
    "Is there a warranty on this product?",
    "Where can I find my invoice?",
)
PRAISE = (
    "Thanks, my order arrived early and everything is perfect!",
    "Great service, love the product. Thank you!",
    "Very happy with my purchase, will order again.",
    "Fast delivery and lovely packaging, thanks a lot!",
)
LATE = (
    "My order is late again, this is terrible.",
    "Where is my order? It should have arrived days ago.",
    "Still no parcel and no update. Really disappointed.",
    "This is the worst delivery experience I have had.",
)
BROKEN = (
    "The item arrived broken and nobody answers.",
    "Wrong item delivered, I want a refund.",
    "The product stopped working after two days. Not happy at all.",
    "Poor quality, it looks nothing like the pictures.",
)
FOLLOW_UP_NEGATIVE = ("This is not acceptable.", "I have been waiting for a week already.", "Please just refund me.")
THANKS = ("Thanks, that was helpful!", "Perfect, thank you!", "Great, problem solved. Thanks!")
AGENT_REPLY = (
    "Thanks for reaching out, let me check that for you.",
    "I am sorry to hear that, I am looking into it right now.",
    "Sorry for the trouble. I have escalated this to our logistics team.",
    "Happy to help! Let me look at your order.",
)
AGENT_CLOSE = ("Done, anything else I can help with?", "You are welcome, have a nice day!",
               "I have issued the refund, it will show in 3-5 days.")
BOT_GREETING = "Thanks for contacting us! An agent will be with you shortly."


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue entry."""

    product_id: str
    category: str
    brand: str
    price: float


@dataclass
class GeneratedTruth:
    """Latent facts behind the generated traffic, per customer id.

    ``churn_at``: the time from which the customer starts nothing more (``None``: stays
    active for the whole period); ``signup_at``: the first visit.
    """

    churn_at: dict[str, datetime | None] = field(default_factory=dict)
    signup_at: dict[str, datetime] = field(default_factory=dict)
    #: With identities (:class:`IdentityMix`): anonymous id -> the customer it logs in as; customer -> its
    #: device id (a shared one for both customers of a pair); customer -> its e-mail pseudonyms.
    anonymous: dict[str, str] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    emails: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def churned(self, customer: str, at: datetime) -> bool:
        """Whether ``customer`` has churned by ``at`` (the label a churn model predicts)."""
        churn = self.churn_at.get(customer)
        return churn is not None and churn <= at


@dataclass(frozen=True)
class IdentityMix:
    """How many customers (of ``customers``) show each identity case; picked evenly spread over the
    customer indexes, so exactly these counts occur.

    ``anonymous``: customers whose first visit is anonymous until an ``identify``; ``shared_devices``:
    devices each used by two customers (``2 * shared_devices`` customers); ``two_emails``: customers
    with two e-mail addresses.
    """

    anonymous: int = 0
    shared_devices: int = 0
    two_emails: int = 0

    def check(self, customers: int) -> None:
        """ValueError when the counts do not fit ``customers``."""
        if min(self.anonymous, self.shared_devices, self.two_emails) < 0:
            raise ValueError(f"identity counts must be >= 0: {self}")
        if self.anonymous > customers or self.two_emails > customers or 2 * self.shared_devices > customers:
            raise ValueError(f"{self} does not fit {customers} customers (a shared device takes two)")

    @classmethod
    def parse(cls, text: str) -> IdentityMix:
        """``anonymous=N,shared-devices=N,two-emails=N`` (any subset) as a mix; ValueError naming the problem."""
        counts: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in ("anonymous", "shared_devices", "two_emails") or not value.strip().isdigit():
                raise ValueError(f"not NAME=COUNT with NAME anonymous, shared-devices or two-emails: {part!r}")
            counts[name] = int(value)
        return cls(**counts)


def _spread(i: int, chosen: int, total: int) -> bool:
    """Whether index ``i`` of ``total`` is one of ``chosen`` evenly spread ones (exactly ``chosen`` are)."""
    return total > 0 and (i + 1) * chosen // total > i * chosen // total


def _token(*parts: object) -> str:
    """A short stable pseudonymous id from ``parts`` (no random draw)."""
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).hexdigest()


class Generator:
    """Seeded journeys: ``.records()`` gives the traffic; ``.truth`` the latent churn, filled as it goes."""

    def __init__(self, customers: int = 2000, days: int = 30, seed: int = 7,
                 start: datetime = datetime(2024, 1, 1, tzinfo=UTC), identities: IdentityMix | None = None) -> None:
        if customers < 0 or days <= 0:
            raise ValueError(f"need customers >= 0 and days > 0, not {customers=} {days=}")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if identities is not None:
            identities.check(customers)
        self.customers, self.days, self.seed, self.start = customers, days, seed, start
        self.identities = identities
        self.truth = GeneratedTruth()
        self.start_ms = round(start.timestamp() * 1000)
        self.end_ms = self.start_ms + days * DAY
        rng = random.Random(seed)
        self.catalog: list[Product] = []
        for i in range(max(60, customers // 5)):
            category = CATEGORY_NAMES[i % len(CATEGORY_NAMES)]
            median, spread, _ = CATEGORIES[category]
            price = round(max(1.0, median * rng.lognormvariate(0, spread)), 2)
            self.catalog.append(Product(f"sku-{i:05d}", category, rng.choice(BRANDS), price))
        self.by_category = {name: [p for p in self.catalog if p.category == name] for name in CATEGORY_NAMES}

    def records(self) -> list[SourceRecord]:
        """Every event of every customer, sorted by event time (stable)."""
        times: list[int] = []
        records: list[SourceRecord] = []
        # No reference cycles are made here, so the cyclic collector only costs time (10-20%, measured)
        # scanning the growing record list; it is paused while building and restored after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for n in range(self.customers):
                _Journey(self, n, times, records).run()
        finally:
            if collecting:
                gc.enable()
        order = sorted(range(len(records)), key=times.__getitem__)
        return [records[i] for i in order]


def generate(customers: int = 2000, days: int = 30, seed: int = 7,
             start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
             identities: IdentityMix | None = None) -> list[SourceRecord]:
    """The records of ``Generator(customers, days, seed, start, identities)`` (the class gives its truth too)."""
    return Generator(customers, days, seed, start, identities).records()


def _pick(rand: Callable[[], float], options: Sequence[T]) -> T:
    return options[int(rand() * len(options))]


class _Journey:
    """One customer's life in the shop; appends each record to ``records`` and its time (ms) to ``times``."""

    def __init__(self, generator: Generator, n: int, times: list[int], records: list[SourceRecord]) -> None:
        self.g = generator
        self.times = times
        self.records = records
        self.rng = random.Random(f"{generator.seed}/{n}")
        self.rand = self.rng.random
        self.customer = f"c{n:06d}"
        self.key = self.customer.encode()
        self.prefix = f"gen-{generator.seed}-{self.customer}-"
        self.seq = 0
        self.end_ms = generator.end_ms
        self.churn_ms: int | None = None
        self.act_limit_ms = self.end_ms  # the customer starts nothing at or after this (end or churn)
        self.last_act_ms = 0  # the latest event the customer started: churn is never moved before it
        self.consent: dict[str, bool] = {}
        self.cart: dict[str, list[Any]] = {}  # product id -> [product, quantity]
        self.orders = 0
        self.chats = 0
        self.platform = "web"
        self.device = "desktop"
        self.time_zone = TIME_ZONES[zlib.crc32(self.key) % len(TIME_ZONES)]
        self.taste: list[str] = []
        self.propensity = 0.0
        self.ids = _Identities(generator, n) if generator.identities is not None else None

    # -- plumbing ---------------------------------------------------------------------------

    def emit(self, ms: int, topic: str, body: dict[str, Any], by_customer: bool = True) -> str | None:
        """Add one event at ``ms``; None (nothing added) at or after the end, or after churn if the customer acts."""
        if by_customer:
            if ms >= self.act_limit_ms:
                return None
            if ms > self.last_act_ms:
                self.last_act_ms = ms
        elif ms >= self.end_ms:
            return None
        ids = self.ids
        if ids is not None and ids.anonymous is not None and (topic != "clickstream"
                                                              or body["type"] == "checkout_started"):
            self.login(max(ms, ids.anonymous_last_ms))  # logged in to check out, order, chat...
        self.seq = seq = self.seq + 1
        body["event_id"] = event_id = f"{self.prefix}{seq}"
        key = self.key
        if ids is None:
            body["customer_id"] = self.customer
        else:
            key = ids.label(ms, topic, body, self.customer, self.key)
        body["event_time"] = when = _from_timestamp(ms / 1000, UTC)
        body["schema_version"] = SCHEMA_VERSION
        self.times.append(ms)
        # A right-sized copy: keeping orjson's over-allocated buffers alive is slower (see record.owned).
        clean_body(body)  # the edge: free text redacted (streams/sources/edge.py)
        self.records.append(SourceRecord(topic, key, bytes(memoryview(_dumps(body, option=_UTC_Z))), when))
        if ids is not None and ids.second_email_due:
            ids.second_email_due = False
            self.emit(ms, "clickstream", {"type": "identify", "email_hash": ids.emails[1]},  # a second address
                      by_customer=False)
        return event_id

    def login(self, ms: int) -> None:
        """End the anonymous visit: an ``identify`` linking its anonymous id to the customer at ``ms``."""
        assert self.ids is not None and self.ids.anonymous is not None
        anonymous, self.ids.anonymous = self.ids.anonymous, None
        self.emit(ms, "clickstream", {"type": "identify", "anonymous_id": anonymous, "channel": self.platform,
                                      "device": self.device}, by_customer=False)

    def set_churn(self, ms: int) -> None:
        self.churn_ms = ms
        self.act_limit_ms = min(self.end_ms, ms)

    def uniform_ms(self, low: float, high: float) -> int:
        return int(low + (high - low) * self.rand())

    def exp_ms(self, mean: float) -> int:
        return int(-log(1.0 - self.rand()) * mean)

    def bring_churn_forward(self, ms: int, probability: float, mean_delay: float) -> None:
        if self.rand() < probability:
            candidate = max(ms + self.exp_ms(mean_delay), self.last_act_ms + 1)
            if self.churn_ms is None or candidate < self.churn_ms:
                self.set_churn(candidate)

    # -- the journey ------------------------------------------------------------------------

    def run(self) -> None:
        for _ in self.steps():
            pass

    def steps(self) -> Iterator[int]:
        """The journey one session at a time: yields the session's start before running it; every event
        it adds from then on is at or after that time (what lets ``generator_stream`` merge journeys lazily)."""
        g, rand = self.g, self.rand
        signup = g.start_ms + int(rand() * g.days * 0.6 * DAY)
        if rand() < 0.4:
            self.set_churn(signup + MINUTE + self.exp_ms(12 * DAY))
        weights = [a[0] for a in ACQUISITION]
        _, platform, source, medium, campaign, referrer = self.rng.choices(ACQUISITION, weights)[0]
        self.platform = platform
        self.device = self._device(platform)
        self.taste = self.rng.sample(CATEGORY_NAMES, 2)
        self.propensity = self.rng.betavariate(2, 5)  # how readily this customer buys
        sessions_per_day = self.rng.lognormvariate(-1.1, 0.8)

        self.consent_change(signup, "email", rand() < 0.65, "signup_form")
        self.consent_change(signup, "push", rand() < (0.6 if platform == "app" else 0.1), "signup_form")
        self.consent_change(signup, "sms", rand() < 0.15, "signup_form")
        t = signup
        first = True
        while t < self.act_limit_ms:
            if first:
                utm = (source, medium, campaign, referrer)
            elif self.consent.get("email") and rand() < 0.2:
                utm = ("newsletter", "email", "weekly_deals", None)
            elif rand() < 0.08:
                utm = ("google", "cpc", "retargeting", "https://www.google.com/")
            else:
                utm = (None, None, None, None)
            yield t
            if first and self.ids is not None and self.ids.anonymous_first:
                self.ids.anonymous = self.ids.anonymous_id
            visited = self.session(t, utm)
            if self.ids is not None and self.ids.anonymous is not None:  # logged in at the visit's end
                self.login(self.ids.anonymous_last_ms if not visited else max(t, self.ids.anonymous_last_ms))
            if not visited:
                break
            first = False
            if rand() < 0.015:
                channel = _pick(rand, ("email", "sms", "push"))
                self.consent_change(t + self.uniform_ms(MINUTE, HOUR), channel, not self.consent.get(channel),
                                    "preference_centre")
            t += max(MINUTE, int(-log(1.0 - rand()) / sessions_per_day * DAY))
        g.truth.signup_at[self.customer] = datetime.fromtimestamp(signup / 1000, UTC)
        g.truth.churn_at[self.customer] = (datetime.fromtimestamp(self.churn_ms / 1000, UTC)
                                           if self.churn_ms is not None else None)

    def _device(self, platform: str) -> str:
        r = self.rand()
        if platform == "app":
            return "mobile" if r < 0.85 else "tablet"
        if platform == "mobile_web":
            return "mobile"
        return "desktop" if r < 0.7 else ("mobile" if r < 0.9 else "tablet")

    def consent_change(self, ms: int, channel: str, granted: bool, source: str) -> None:
        """Record a change of consent: only real changes (the first one only when granting)."""
        before = self.consent.get(channel)
        if (before is None and not granted) or before == granted:
            return
        if self.emit(ms, "consent", {"type": "consent_changed", "channel": channel,
                                     "status": "granted" if granted else "withdrawn", "purpose": "marketing",
                                     "source": source, "time_zone": self.time_zone}) is not None:
            self.consent[channel] = granted

    def session(self, t: int, utm: tuple[str | None, str | None, str | None, str | None]) -> bool:
        """One visit starting at ``t``; False when the customer can do nothing more (end or churn)."""
        rand = self.rand
        visitor = self.customer if self.ids is None or self.ids.anonymous is None else self.ids.anonymous
        session_id = f"{visitor}-s{self.seq}"
        if self.cart and rand() < 0.25:
            self.cart.clear()  # the shop expired the old cart
        common = {"session_id": session_id, "channel": self.platform, "device": self.device}
        source, medium, campaign, referrer = utm
        landing: dict[str, Any] = {"type": "page_view", "page_url": "/", "time_zone": self.time_zone, **common}
        if source is not None:
            landing.update(utm_source=source, utm_medium=medium, utm_campaign=campaign,
                           page_url=f"/?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}")
        if referrer is not None:
            landing["referrer"] = referrer
        if self.emit(t, "clickstream", landing) is None:
            return False
        steps = 1 + min(30, self.exp_ms(5.0))
        for _ in range(steps):
            t += SECOND * (5 + self.exp_ms(40.0))
            if not self.step(t, common):
                return False
        if self.cart:
            t += self.uniform_ms(20 * SECOND, 2 * MINUTE)
            if rand() < 0.25 + 0.5 * self.propensity:
                value = round(sum(p.price * q for p, q in self.cart.values()), 2)
                if self.emit(t, "clickstream", {"type": "checkout_started", "cart_value": value, "currency": "EUR",
                                                "items": sum(q for _, q in self.cart.values()), **common}) is None:
                    return False
                if rand() < 0.75:
                    self.order(t + self.uniform_ms(30 * SECOND, 5 * MINUTE), session_id)
        if rand() < 0.02:
            self.chat(t + self.uniform_ms(MINUTE, HOUR), "question")
        return True

    def step(self, t: int, common: dict[str, Any]) -> bool:
        """One click in a session; False when nothing more can happen (end or churn)."""
        rand = self.rand
        r = rand()
        if r < 0.10:
            category = _pick(rand, self.taste) if rand() < 0.7 else _pick(rand, CATEGORY_NAMES)
            return self.emit(t, "clickstream", {"type": "page_view", "page_url": f"/c/{category}",
                                                **common}) is not None
        if r < 0.22:
            terms = CATEGORIES[_pick(rand, self.taste)][2]
            return self.emit(t, "clickstream", {"type": "search", "query": _pick(rand, terms),
                                                "results": int(rand() * 80), **common}) is not None
        product = self.product()
        fields = {"product_id": product.product_id, "category_id": product.category, "brand": product.brand,
                  "price": product.price, "currency": "EUR", **common}
        if self.emit(t, "clickstream", {"type": "product_view", "page_url": f"/p/{product.product_id}",
                                        **fields}) is None:
            return False
        r = rand()
        if r < 0.1 + 0.3 * self.propensity:
            quantity = 2 if rand() < 0.15 else 1
            if self.emit(t + self.uniform_ms(5 * SECOND, MINUTE), "clickstream",
                         {"type": "add_to_cart", "quantity": quantity, **fields}) is not None:
                self.cart.setdefault(product.product_id, [product, 0])[1] += quantity
        elif r < 0.15 + 0.3 * self.propensity:
            self.emit(t + self.uniform_ms(5 * SECOND, 30 * SECOND), "clickstream",
                      {"type": "add_to_wishlist", **fields})
        if self.cart and rand() < 0.05:
            removed, quantity = self.cart.pop(_pick(rand, sorted(self.cart)))
            self.emit(t + self.uniform_ms(SECOND, 20 * SECOND), "clickstream", {
                "type": "remove_from_cart", "product_id": removed.product_id, "category_id": removed.category,
                "brand": removed.brand, "price": removed.price, "currency": "EUR", "quantity": quantity, **common})
        return True

    def product(self) -> Product:
        rand = self.rand
        category = _pick(rand, self.taste) if rand() < 0.75 else _pick(rand, CATEGORY_NAMES)
        return _pick(rand, self.g.by_category[category])

    def order(self, t: int, session_id: str) -> None:
        """Place an order from the cart and play its lifecycle out."""
        rand = self.rand
        self.orders += 1
        order_id = f"o-{self.customer}-{self.orders}"
        lines = list(self.cart.values())
        items = [{"product_id": p.product_id, "category_id": p.category, "quantity": q, "unit_price": p.price}
                 for p, q in lines]
        freight = 0.0 if len(lines) > 2 else _pick(rand, (0.0, 4.99, 4.99, 9.99))
        amount = round(sum(p.price * q for p, q in lines) + freight, 2)
        base = {"order_id": order_id, "currency": "EUR"}
        if self.emit(t, "orders", {"type": "order_placed", "items": items, "amount": amount, "freight": freight,
                                   "channel": self.platform, "session_id": session_id, **base}) is None:
            return
        self.cart.clear()
        r = rand()
        if r < 0.03:
            self.emit(t + self.uniform_ms(10 * MINUTE, 2 * HOUR), "orders",
                      {"type": "order_cancelled", "reason": "payment_failed", **base}, by_customer=False)
            return
        paid = t + self.uniform_ms(30 * SECOND, 20 * MINUTE)
        payment = self.rng.choices([p for p, _ in PAYMENTS], [w for _, w in PAYMENTS])[0]
        installments = _pick(rand, (1, 1, 1, 3, 6)) if payment == "credit_card" else 1
        self.emit(paid, "orders", {"type": "order_paid", "amount": amount, "payment_type": payment,
                                   "installments": installments, **base}, by_customer=False)
        if r < 0.06:
            cancelled = paid + self.uniform_ms(HOUR, 20 * HOUR)
            if self.emit(cancelled, "orders", {"type": "order_cancelled", "reason": "customer_request", **base}):
                self.emit(cancelled + self.uniform_ms(DAY, 3 * DAY), "orders",
                          {"type": "order_refunded", "amount": amount, "reason": "cancelled", **base},
                          by_customer=False)
                return
        shipped = paid + self.uniform_ms(6 * HOUR, 2.5 * DAY)
        self.emit(shipped, "orders", {"type": "order_shipped", **base}, by_customer=False)
        late = rand() < 0.12
        expected = shipped + 3 * DAY
        delivered = shipped + (self.uniform_ms(5 * DAY, 12 * DAY) if late else self.uniform_ms(DAY, 3 * DAY))
        if late and rand() < 0.6:
            self.chat(expected + self.uniform_ms(2 * HOUR, 2 * DAY), "late")
        self.emit(delivered, "orders", {"type": "order_delivered", **base}, by_customer=False)
        if rand() < (0.2 if late else 0.04):
            complaint = rand() < 0.5
            if complaint:
                self.chat(delivered + self.uniform_ms(HOUR, 2 * DAY), "broken")
            one_line = _pick(rand, lines)
            refund = amount if complaint or len(lines) == 1 else round(one_line[0].price * one_line[1], 2)
            self.emit(delivered + self.uniform_ms(3 * DAY, 14 * DAY), "orders", {
                "type": "order_refunded", "amount": refund, "reason": "damaged" if complaint else "returned", **base},
                by_customer=False)
        elif not late and rand() < 0.03:
            self.chat(delivered + self.uniform_ms(HOUR, 3 * DAY), "praise")

    def chat(self, t: int, mood: str) -> None:
        """A support conversation started by the customer at ``t``; complaints may bring churn forward."""
        rand = self.rand
        self.chats += 1
        conversation = f"conv-{self.customer}-{self.chats}"
        channel = "live_chat" if rand() < 0.6 else "email"
        gap = (15 * SECOND, 3 * MINUTE) if channel == "live_chat" else (HOUR, 20 * HOUR)
        negative = mood in ("late", "broken")
        opener = {"question": QUESTIONS, "praise": PRAISE, "late": LATE, "broken": BROKEN}[mood]
        turns: list[tuple[str, str]] = [("customer", _pick(rand, opener))]
        if channel == "live_chat" and rand() < 0.3:
            turns.append(("bot", BOT_GREETING))
        turns.append(("agent", _pick(rand, AGENT_REPLY)))
        if mood != "praise" and rand() < 0.7:
            turns.append(("customer", _pick(rand, FOLLOW_UP_NEGATIVE if negative and rand() < 0.6 else THANKS)))
            turns.append(("agent", _pick(rand, AGENT_CLOSE)))
        previous: str | None = None
        started = False
        for role, text in turns:
            body: dict[str, Any] = {"type": "chat_message", "conversation_id": conversation, "sender_role": role,
                                    "channel": channel, "text": text, "language": "en"}
            if previous is not None:
                body["in_reply_to"] = previous
            previous = self.emit(t, "chat", body, by_customer=role == "customer")
            if previous is None:
                break
            started = True
            t += self.uniform_ms(*gap)
        if negative and started:
            if rand() < 0.2:
                self.consent_change(t, "email", False, "unsubscribe_link")
            self.bring_churn_forward(t, 0.5, 5 * DAY)


class _Identities:
    """One customer's identifiers under an :class:`IdentityMix`, and how it labels each event."""

    def __init__(self, generator: Generator, n: int) -> None:
        mix, total, seed = generator.identities, generator.customers, generator.seed
        assert mix is not None
        customer = f"c{n:06d}"
        self.anonymous_first = _spread(n, mix.anonymous, total)
        self.anonymous_id = f"anon-{_token(seed, n, 'anonymous')}"
        self.anonymous: str | None = None  # the anonymous id while the visit is anonymous
        self.anonymous_last_ms = 0
        pair = n // 2
        shared = n < 2 * (total // 2) and _spread(pair, mix.shared_devices, total // 2)
        self.device_id = f"dev-{_token(seed, 'pair', pair) if shared else _token(seed, n, 'device')}"
        count = 2 if _spread(n, mix.two_emails, total) else 1
        self.emails = tuple(f"h-{_token(seed, n, 'email', k)}" for k in range(count))
        self.emailed = False
        self.second_email_due = False
        truth = generator.truth
        truth.devices[customer] = self.device_id
        truth.emails[customer] = self.emails
        if self.anonymous_first:
            truth.anonymous[self.anonymous_id] = customer

    def label(self, ms: int, topic: str, body: dict[str, Any], customer: str, key: bytes) -> bytes:
        """Set the event's identifiers; return its key (the anonymous id while anonymous)."""
        if topic == "clickstream":
            body["device_id"] = self.device_id
        if self.anonymous is not None and topic == "clickstream":
            body["anonymous_id"] = self.anonymous
            self.anonymous_last_ms = max(self.anonymous_last_ms, ms)
            return self.anonymous.encode()
        body["customer_id"] = customer
        if not self.emailed:  # the first known event: the sign-up, with the customer's (first) address
            self.emailed = True
            body["email_hash"] = self.emails[0]
            self.second_email_due = len(self.emails) > 1
        return key
