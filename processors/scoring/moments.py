"""When a profile change is worth a score: a new session, a cart or checkout change, an order.

Scoring on every event would flood the ``scores`` topic with near-identical probabilities;
these are the changes after which a customer's outlook can really have moved. A profile is
reduced to a small signature, and a score is due when the signature differs from the one
of the customer's previous score.
"""

from __future__ import annotations

from typing import Any

#: Profile fields whose change makes a purchase-propensity score due.
PROPENSITY_FIELDS = ("sessions", "cart_items", "cart_products", "checkout_open", "orders_total")
#: Profile fields whose change makes a churn score due (Olist-like sources have no sessions: deliveries
#: and reviews are the activity there).
CHURN_FIELDS = ("sessions", "orders_total", "orders_delivered", "chat_customer_messages", "orders_refunded")


def signature(profile: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """The values of ``fields`` in a ``customer-features`` record."""
    features = profile["features"]
    return tuple(features.get(name) for name in fields)


def changed(previous: tuple[Any, ...] | None, current: tuple[Any, ...]) -> bool:
    """Whether a score is due: the first profile of a customer, or a signature that moved."""
    return previous != current
