"""Scores that follow time: when a customer is re-scored without new events, and their profile as of then.

A churn or propensity score depends on ages (hours since the last order, since first seen,
since the cart changed...). A score made only when the profile changes keeps the ages of
that moment for ever: a customer who went quiet kept the churn score of their last purchase.
So every scored customer is re-scored through the host's timers (``due``/``next_timer``, in
event time for a replay, on the wall clock when live): ``AGE_BUCKETS_HOURS`` after the
newest profile that made a score (the ages cross from minutes into hours), then every
``rescore_every`` after it. The schedule is a function of that time alone (not of how often
the features processor emitted profiles in between), so a replay and a paced run re-score at
the same instants.

The profile as of a later time ``t`` (``aged``): ages are computed at ``t`` by the vector
(``vector.vector(profile, t)``); order counts over windows (``orders_30d``...) are recounted
from the customer's order times the scorer keeps; every other windowed count whose window has
wholly passed since the profile's own time is 0 (nothing happened since, or a new profile
would have come), and one whose window has not passed keeps its value (an upper bound; those
are the short-term activity inputs, and a new session makes a new profile anyway).
"""

from __future__ import annotations

import bisect
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: Re-scores this many hours after each new profile, before the daily schedule takes over.
AGE_BUCKETS_HOURS = (1, 6)
#: A score made by a timer is held for learning at most this often per model (and no more often than the
#: model's own ``hold_every``): a quiet customer re-scored daily would otherwise flood the learner with
#: near-identical examples.
RESCORE_HOLD_EVERY_MS = 7 * DAY_MS
#: The window of each windowed profile count, by its name's suffix.
WINDOWS = {"_1h": HOUR_MS, "_24h": DAY_MS, "_7d": 7 * DAY_MS, "_30d": 30 * DAY_MS, "_90d": 90 * DAY_MS,
           "_365d": 365 * DAY_MS}
#: Windowed order counts recounted exactly from the order times.
ORDER_WINDOWS = {"orders_30d": 30 * DAY_MS, "orders_90d": 90 * DAY_MS, "orders_365d": 365 * DAY_MS}


def next_rescore(profile_ms: int, after_ms: int, every_ms: int) -> int:
    """The first re-scoring time after ``after_ms`` for a customer whose newest profile is at ``profile_ms``."""
    for hours in AGE_BUCKETS_HOURS:
        if hours * HOUR_MS < every_ms and profile_ms + hours * HOUR_MS > after_ms:
            return profile_ms + hours * HOUR_MS
    k = max((after_ms - profile_ms) // every_ms + 1, 1)
    return profile_ms + k * every_ms


_WINDOW_OF: dict[str, int | None] = {}


def _window(name: str) -> int | None:
    """The window of a profile field by its suffix (None: not windowed); cached per name."""
    try:
        return _WINDOW_OF[name]
    except KeyError:
        window = next((ms for suffix, ms in WINDOWS.items() if name.endswith(suffix)), None)
        _WINDOW_OF[name] = window
        return window


def aged(profile: dict[str, Any], profile_ms: int, t_ms: int, orders: list[int]) -> dict[str, Any]:
    """``profile`` (as of ``profile_ms``) as of the later time ``t_ms`` with no event in between."""
    elapsed = t_ms - profile_ms
    features = dict(profile["features"])
    for name, value in features.items():
        window = _window(name)
        if window is None or value is None or isinstance(value, str):
            continue
        if name in ORDER_WINDOWS:  # the features' definition: orders in the days (day(t) - N, day(t)]
            start = (t_ms // DAY_MS + 1) * DAY_MS - window
            features[name] = bisect.bisect_right(orders, t_ms) - bisect.bisect_left(orders, start)
        elif elapsed >= window:
            features[name] = 0
    return {**profile, "features": features}
