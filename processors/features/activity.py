"""Activity: clickstream counts per type over 1 h, 24 h, 7 d, 30 d and lifetime; last seen; active days.

Windows are composable buckets: per-minute counts for the minute windows and per-hour
counts for the hour windows. A window of N minutes as of time T holds the events whose
minute is in (minute(T) - N, minute(T)]; hour windows likewise. Buckets older than the
longest window are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.features.base import Observed, day_of, hour_of, minute_of
from processors.features.config import FeatureConfig

#: clickstream type -> the feature name of its count.
COUNTED = {
    "page_view": "page_views", "product_view": "product_views", "search": "searches", "add_to_cart": "cart_adds",
    "remove_from_cart": "cart_removes", "add_to_wishlist": "wishlist_adds", "checkout_started": "checkouts",
}


@dataclass(slots=True)
class ActivityState:
    lifetime: dict[str, int] = field(default_factory=dict)
    minutes: dict[int, dict[str, int]] = field(default_factory=dict)
    hours: dict[int, dict[str, int]] = field(default_factory=dict)
    days: set[int] = field(default_factory=set)
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    prune_at: int = 32  # bucket count that triggers the next pruning (doubles, so pruning is amortised O(1))


def _bump(buckets: dict[int, dict[str, int]], key: int, kind: str) -> None:
    bucket = buckets.get(key)
    if bucket is None:
        buckets[key] = {kind: 1}
    else:
        bucket[kind] = bucket.get(kind, 0) + 1


Plan = tuple[tuple[int, ...], list[tuple[int, list[tuple[str, str]]]]]


def _plan(widths: dict[str, int]) -> Plan:
    """Windows in ascending width, and per window (in the configured order) its index there and output keys."""
    ascending = sorted(widths.items(), key=lambda lw: lw[1])
    index = {label: i for i, (label, _) in enumerate(ascending)}
    keys = [(index[label], [(kind, f"{name}_{label}") for kind, name in COUNTED.items()]) for label in widths]
    return tuple(w for _, w in ascending), keys


def _windows(buckets: dict[int, dict[str, int]], now: int, widths: tuple[int, ...]) -> list[dict[str, int]]:
    """Totals per type for every window ending at bucket ``now`` (``widths`` ascending), in one pass.

    Each bucket is added once, to the narrowest window holding it; a wider window's totals are
    the running sum over the narrower ones.
    """
    rings: list[dict[str, int]] = [{} for _ in widths]
    widest = widths[-1]
    for key, bucket in buckets.items():
        age = now - key
        if age < 0 or age >= widest:
            continue
        i = 0
        while age >= widths[i]:
            i += 1
        ring = rings[i]
        for kind, n in bucket.items():
            ring[kind] = ring.get(kind, 0) + n
    totals: list[dict[str, int]] = []
    running: dict[str, int] = {}
    for ring in rings:
        for kind, n in ring.items():
            running[kind] = running.get(kind, 0) + n
        totals.append(dict(running))
    return totals


class Activity:
    name: ClassVar[str] = "activity"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders", "chat", "consent"})

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._keep_minutes = max(config.minute_windows.values())
        self._keep_hours = max(config.hour_windows.values())
        self._minute_plan = _plan(config.minute_windows)
        self._hour_plan = _plan(config.hour_windows)
        self._total_keys = [(kind, f"{name}_total") for kind, name in COUNTED.items()]

    def init(self) -> ActivityState:
        return ActivityState()

    def update(self, state: ActivityState, seen: Observed) -> ActivityState:
        t = seen.t_ms
        if state.first_seen_ms is None or t < state.first_seen_ms:
            state.first_seen_ms = t
        if state.last_seen_ms is None or t > state.last_seen_ms:
            state.last_seen_ms = t
        state.days.add(day_of(t))
        if seen.topic != "clickstream":
            return state
        kind = seen.type
        state.lifetime[kind] = state.lifetime.get(kind, 0) + 1
        _bump(state.minutes, minute_of(t), kind)
        _bump(state.hours, hour_of(t), kind)
        self._prune(state)
        return state

    def _prune(self, state: ActivityState) -> None:
        # Keep a lateness margin past the longest window: a late event must still find its bucket.
        if len(state.minutes) + len(state.hours) <= state.prune_at:
            return
        assert state.last_seen_ms is not None
        margin = self.config.allowed_lateness_ms
        oldest_minute = minute_of(state.last_seen_ms - margin) - self._keep_minutes
        state.minutes = {m: b for m, b in state.minutes.items() if m > oldest_minute}
        oldest_hour = hour_of(state.last_seen_ms - margin) - self._keep_hours
        state.hours = {h: b for h, b in state.hours.items() if h > oldest_hour}
        state.prune_at = max(32, 2 * (len(state.minutes) + len(state.hours)))

    def values(self, state: ActivityState, as_of_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for buckets, now, (widths, outputs) in ((state.minutes, minute_of(as_of_ms), self._minute_plan),
                                                (state.hours, hour_of(as_of_ms), self._hour_plan)):
            totals = _windows(buckets, now, widths)
            for i, keys in outputs:
                window = totals[i]
                for kind, key in keys:
                    out[key] = window.get(kind, 0)
        lifetime = state.lifetime
        for kind, key in self._total_keys:
            out[key] = lifetime.get(kind, 0)
        out["first_seen_ms"] = state.first_seen_ms
        out["last_seen_ms"] = state.last_seen_ms
        out["active_days"] = len(state.days)
        return out
