"""The model inputs: a dict of named floats computed from one profile as of its own time.

Counts and amounts enter as ``log1p`` (heavy tails; a linear model then reads ratios),
ages as ``log1p`` hours, missing values as 0 with a ``has_*`` indicator. Everything is
read from the ``customer-features`` record at ``as_of``, so a vector never sees anything
after the prediction time. The same vector feeds the online model and the offline one.
"""

from __future__ import annotations

from math import cos, expm1, log, log1p, pi, sin
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

#: Profile counts and amounts that enter as log1p(value).
LOG_COUNTS = (
    "product_views_1h", "product_views_24h", "product_views_7d", "product_views_30d",
    "page_views_24h", "searches_24h", "searches_7d",
    "cart_adds_1h", "cart_adds_24h", "cart_adds_7d", "cart_removes_24h",
    "wishlist_adds_24h", "wishlist_adds_7d", "checkouts_24h", "checkouts_7d",
    "sessions", "bounce_sessions", "session_depth", "session_length_s", "active_days",
    "cart_items", "cart_products", "cart_value",
    "orders_total", "orders_30d", "orders_90d", "orders_365d", "revenue_total", "revenue_90d",
    "average_order_value", "days_between_orders", "orders_cancelled", "orders_refunded", "orders_delivered",
    "chat_customer_messages", "unresolved_conversations", "negative_streak", "events_total",
)

#: Ages (hours from a profile timestamp to as_of), with a has_* indicator when the timestamp is unset.
AGES = {"first_seen_ms": "hours_since_first_seen", "last_order_ms": "hours_since_last_order",
        "cart_last_change_ms": "hours_since_cart_change", "checkout_started_ms": "hours_since_checkout",
        "last_delivered_ms": "hours_since_delivery"}


#: The ``compact`` input set: one input per concept (how much and how often the customer orders,
#: how recently, how long they have been seen, how active now, the cart, time of day) instead of
#: every window of every count. Naive Bayes counts correlated inputs as independent evidence, so
#: fewer, less redundant inputs rank better (see ``processors/scoring/README.md``).
COMPACT = (
    "orders_total", "orders_per_session", "orders_per_active_day", "orders_per_day",
    "hours_since_last_order", "has_last_order", "hours_since_first_seen", "sessions", "events_total",
    "product_views_24h", "cart_adds_24h", "wishlist_adds_24h", "cart_items", "hours_since_cart_change",
    "has_cart_change", "session_depth", "day_sin", "day_cos",
)


#: The purchase inputs (``purchase_inputs``): what RFM and BG/NBD models read from the orders alone.
PURCHASES = ("recency_log", "frequency_log", "monetary_log", "tenure_log", "alive_logit", "alive_gap",
             "alive_gap_x", "recency_per_gap", "recency_7d", "recency_30d", "recency_90d", "recency_180d",
             "recency_365d", "single_order")

#: The Pareto/NBD-style prior's shape (r = s) and scale (alpha = beta, days): a customer buys at a Poisson
#: rate and stays for an exponential lifetime, both gamma-distributed across customers.
PRIOR_SHAPE = 1.0
PRIOR_SCALE_DAYS = 60.0


def purchase_inputs_of(orders: int, first_ms: int | None, last_ms: int | None, revenue: float,
                       t_ms: int) -> dict[str, float]:
    """The purchase inputs at ``t_ms`` from the order count, first and last order times and revenue.

    RFM and tenure (days, as log1p), the mean order amount, and a "buy till you die" prior: the
    probability that the customer is still active given ``x`` repeat orders, the last ``t_x`` days after
    the first, and ``T`` days of tenure, in the Pareto/NBD closed form with equal scales
    (P(alive) = 1 / (1 + s / (r + s + x) * (((a + T) / (a + t_x)) ** (r + s + x) - 1))), as log-odds,
    with its parts (log of the gap ratio, and times x) so the learner can re-weight them; recency in
    units of the customer's own shrunk mean gap; recency bins. All 0 before the first order.
    """
    x: dict[str, float] = dict.fromkeys(PURCHASES, 0.0)
    if not orders or first_ms is None or last_ms is None:
        return x
    recency = max(t_ms - last_ms, 0) / DAY_MS
    tenure = max(t_ms - first_ms, 0) / DAY_MS
    t_x = max(last_ms - first_ms, 0) / DAY_MS
    repeat = orders - 1
    x["recency_log"] = log1p(recency)
    x["frequency_log"] = log1p(orders)
    x["monetary_log"] = log1p(max(revenue, 0.0) / orders)
    x["tenure_log"] = log1p(tenure)
    a, r = PRIOR_SCALE_DAYS, PRIOR_SHAPE
    gap = log((a + tenure) / (a + t_x))
    odds_dead = r / (2 * r + repeat) * expm1(min((2 * r + repeat) * gap, 50.0))
    x["alive_logit"] = -log(max(odds_dead, 1e-12))
    x["alive_gap"] = gap
    x["alive_gap_x"] = repeat * gap
    x["recency_per_gap"] = log1p(recency / ((t_x + a) / (repeat + 1)))
    for days in (7, 30, 90, 180, 365):
        x[f"recency_{days}d"] = 1.0 if recency <= days else 0.0
    x["single_order"] = 1.0 if orders == 1 else 0.0
    return x


def purchase_inputs(orders: list[tuple[int, float]], t_ms: int) -> dict[str, float]:
    """``purchase_inputs_of`` a customer's orders (epoch ms, amount) up to ``t_ms``."""
    before = [(t, a) for t, a in orders if t <= t_ms]
    if not before:
        return purchase_inputs_of(0, None, None, 0.0, t_ms)
    return purchase_inputs_of(len(before), min(t for t, _ in before), max(t for t, _ in before),
                              sum(a for _, a in before), t_ms)


#: The ``churn`` input set: the purchase inputs (RFM, tenure, the buy-till-you-die prior, recency against
#: the customer's own gap) and the behavioural inputs a purchases-only shop leaves at 0: browsing, the
#: cart, deliveries, cancellations and refunds, and what the customer says. Chosen by measurement
#: (``tests/bench/churn_learners.py``; ``processors/scoring/README.md``).
CHURN = (
    *PURCHASES, "sessions", "active_days", "product_views_30d", "cart_adds_7d", "hours_since_cart_change",
    "has_cart_change",
    "orders_cancelled", "orders_refunded", "hours_since_delivery", "has_delivery", "unresolved_conversations",
    "negative_streak", "sentiment_7d", "has_sentiment",
)

SETS = {"compact": COMPACT, "churn": CHURN}


def inputs(x: dict[str, float], which: str) -> dict[str, float]:
    """The model's inputs from a full vector: ``all`` of it, or a named set (``compact``, ``churn``)."""
    return x if which == "all" else {name: x[name] for name in SETS[which]}


def _num(value: Any) -> float:
    if value is None or isinstance(value, str):
        return 0.0
    return float(value)


def as_of_ms(profile: dict[str, Any]) -> int:
    """The profile's as-of time (``as_of``) in epoch ms."""
    from datetime import datetime

    return round(datetime.fromisoformat(profile["as_of"]).timestamp() * 1000)


def vector(profile: dict[str, Any], t_ms: int) -> dict[str, float]:
    """Model inputs of a ``customer-features`` record whose as-of time is ``t_ms``."""
    f = profile["features"]
    x: dict[str, float] = {}
    for name in LOG_COUNTS:
        value = f.get(name) if name != "events_total" else profile.get("events_total")
        x[name] = log1p(max(_num(value), 0.0))
    for source, name in AGES.items():
        stamp = f.get(source)
        if stamp is None:
            x[name] = 0.0
            x[f"has_{name.removeprefix('hours_since_')}"] = 0.0
        else:
            x[name] = log1p(max(t_ms - stamp, 0) / HOUR_MS)
            x[f"has_{name.removeprefix('hours_since_')}"] = 1.0
    sessions = _num(f.get("sessions"))
    x["bounce_rate"] = _num(f.get("bounce_sessions")) / sessions if sessions else 0.0
    x["checkout_open"] = 1.0 if f.get("checkout_open") else 0.0
    sentiment = f.get("sentiment_7d")
    x["sentiment_7d"] = _num(sentiment)
    x["has_sentiment"] = 0.0 if sentiment is None else 1.0
    x["last_sentiment"] = _num(f.get("last_sentiment"))
    # Habits: how often this customer's visits, views and cart adds end in an order.
    orders = _num(f.get("orders_total"))
    x["orders_per_session"] = orders / sessions if sessions else 0.0
    x["orders_per_active_day"] = orders / max(_num(f.get("active_days")), 1.0)
    x["cart_adds_per_order"] = log1p(_num(f.get("cart_adds_total")) / (orders + 1.0))
    views = _num(f.get("product_views_7d"))
    x["cart_rate_7d"] = _num(f.get("cart_adds_7d")) / views if views else 0.0
    # The customer's own purchase rate: orders per day since first seen (at least one day), which
    # unlike the order count does not grow with the length of the history.
    first = f.get("first_seen_ms")
    days = max((t_ms - first) / DAY_MS, 1.0) if first is not None else 1.0
    x["orders_per_day"] = log1p(orders / days)
    x.update(purchase_inputs_of(int(orders), f.get("first_order_ms"), f.get("last_order_ms"),
                                _num(f.get("revenue_total")), t_ms))
    # Time of day (UTC) on the circle, for shops whose customers buy at habitual hours.
    angle = 2 * pi * ((t_ms % DAY_MS) / DAY_MS)
    x["day_sin"], x["day_cos"] = sin(angle), cos(angle)
    return x
