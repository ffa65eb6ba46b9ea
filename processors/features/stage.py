"""Journey stage: where a customer is, derived from the features (so it is the same however
the events were batched), with the event time at which they entered it.

Rules, first match wins (``at_risk_days`` 60, ``lapsed_days`` 180 by default):

| stage | when | since |
|---|---|---|
| checkout | a checkout started after the latest order | that checkout |
| carter | the cart holds items | the oldest line of the current cart |
| repeat_buyer | 2+ orders, the latest less than at_risk_days ago | the latest order |
| first_time_buyer | 1 order, less than at_risk_days ago | that order |
| at_risk | ordered, latest order at_risk_days (inclusive) to lapsed_days ago | latest order + at_risk_days |
| lapsed | ordered, latest order lapsed_days ago or more | latest order + lapsed_days |
| browser | viewed a product or searched | first seen |
| visitor | anything else | first seen |

"Ago" is measured from the profile's as-of time. Time alone moves a customer only at the
points :func:`order_points` and the cart's line expiries give (a carter whose cart expires,
a buyer who becomes at risk, then lapsed): the engine re-evaluates the profile as of each such
point once the event-time clock has passed it, so a customer who goes silent still moves on.
"""

from __future__ import annotations

from typing import Any

from processors.features.base import DAY_MS

STAGES = ("visitor", "browser", "carter", "checkout", "first_time_buyer", "repeat_buyer", "at_risk", "lapsed")


def journey_stage(values: dict[str, Any], as_of_ms: int, at_risk_days: int = 60,
                  lapsed_days: int = 180) -> tuple[str, int | None]:
    """The stage and the event time (ms) the customer entered it."""
    if values.get("checkout_open"):
        return "checkout", values["checkout_started_ms"]
    if values.get("cart_items", 0) > 0:
        return "carter", values.get("cart_since_ms")
    orders, last = values.get("orders_total", 0), values.get("last_order_ms")
    if orders and last is not None:
        age = as_of_ms - last
        if age < at_risk_days * DAY_MS:
            return ("repeat_buyer" if orders >= 2 else "first_time_buyer"), last
        if age < lapsed_days * DAY_MS:
            return "at_risk", last + at_risk_days * DAY_MS
        return "lapsed", last + lapsed_days * DAY_MS
    if values.get("product_views_total", 0) or values.get("searches_total", 0):
        return "browser", values.get("first_seen_ms")
    return "visitor", values.get("first_seen_ms")


def order_points(last_order_ms: int | None, at_risk_days: int = 60, lapsed_days: int = 180) -> tuple[int, ...]:
    """The times at which the latest order makes a buyer at risk, then lapsed."""
    if last_order_ms is None:
        return ()
    return last_order_ms + at_risk_days * DAY_MS, last_order_ms + lapsed_days * DAY_MS
