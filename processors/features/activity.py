"""Activity: clickstream counts per type over 1 h, 24 h, 7 d, 30 d and lifetime; last seen; active days.

Windows are composable buckets: per-minute counts for the minute windows and per-hour
counts for the hour windows. A window of N minutes as of time T holds the events whose
minute is in (minute(T) - N, minute(T)]; hour windows likewise. Buckets older than the
longest window are dropped.

A bucket is one int key per (minute or hour, counted type): ``bucket * STRIDE + type index``
-> count, in one flat dict per granularity. A dict per bucket cost 3.5 KB per customer, 40%
of the whole state (``python -m tests.bench.state_size``); flat, the same counts take about a
third of that. Types that no feature counts (not in ``COUNTED``) are counted for their
lifetime only: no window reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from sys import intern
from typing import Any, ClassVar

from processors.features.base import Observed, day_of, hour_of, minute_of
from processors.features.config import FeatureConfig

#: clickstream type -> the feature name of its count.
COUNTED = {
    "page_view": "page_views", "product_view": "product_views", "search": "searches", "add_to_cart": "cart_adds",
    "remove_from_cart": "cart_removes", "add_to_wishlist": "wishlist_adds", "checkout_started": "checkouts",
}


#: A counted type's index in a bucket key (``bucket * STRIDE + index``).
KIND_INDEX = {kind: i for i, kind in enumerate(COUNTED)}
STRIDE = 8
assert len(COUNTED) <= STRIDE


@dataclass(slots=True)
class ActivityState:
    lifetime: dict[str, int] = field(default_factory=dict)
    minutes: dict[int, int] = field(default_factory=dict)  # minute * STRIDE + type index -> count
    hours: dict[int, int] = field(default_factory=dict)  # hour * STRIDE + type index -> count
    days: set[int] = field(default_factory=set)
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    prune_at: int = 32  # bucket count that triggers the next pruning (doubles, so pruning is amortised O(1))

    def __post_init__(self) -> None:
        if self.lifetime:  # restored: one copy of each type name for every customer
            self.lifetime = {intern(kind): n for kind, n in self.lifetime.items()}
        # A state saved before the flat buckets (a dict of counts per bucket) is read into them.
        if self.minutes and isinstance(next(iter(self.minutes.values())), dict):
            self.minutes = _flatten(self.minutes)  # type: ignore[arg-type]
        if self.hours and isinstance(next(iter(self.hours.values())), dict):
            self.hours = _flatten(self.hours)  # type: ignore[arg-type]


def _flatten(buckets: dict[int, dict[str, int]]) -> dict[int, int]:
    """Per-bucket dicts of counts (the earlier layout) as flat keys."""
    return {bucket * STRIDE + KIND_INDEX[kind]: n for bucket, counts in buckets.items()
            for kind, n in counts.items() if kind in KIND_INDEX}


Plan = tuple[tuple[int, ...], list[tuple[int, list[tuple[int, str]]]]]


def _plan(widths: dict[str, int]) -> Plan:
    """Windows in ascending width, and per window (in the configured order) its index there and output keys."""
    ascending = sorted(widths.items(), key=lambda lw: lw[1])
    index = {label: i for i, (label, _) in enumerate(ascending)}
    keys = [(index[label], [(KIND_INDEX[kind], f"{name}_{label}") for kind, name in COUNTED.items()])
            for label in widths]
    return tuple(w for _, w in ascending), keys


def _windows(buckets: dict[int, int], now: int, widths: tuple[int, ...]) -> list[list[int]]:
    """Totals per type index for every window ending at bucket ``now`` (``widths`` ascending), in one pass.

    Each bucket is added once, to the narrowest window holding it; a wider window's totals are
    the running sum over the narrower ones.
    """
    rings = [[0] * STRIDE for _ in widths]
    widest = widths[-1]
    for key, n in buckets.items():
        bucket, kind = divmod(key, STRIDE)
        age = now - bucket
        if age < 0 or age >= widest:
            continue
        i = 0
        while age >= widths[i]:
            i += 1
        rings[i][kind] += n
    totals: list[list[int]] = []
    running = [0] * STRIDE
    for ring in rings:
        running = [a + b for a, b in zip(running, ring, strict=True)]
        totals.append(running)
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
        index = KIND_INDEX.get(kind)
        if index is None:  # no window counts it
            return state
        minute, hour = minute_of(t) * STRIDE + index, hour_of(t) * STRIDE + index
        minutes, hours = state.minutes, state.hours
        minutes[minute] = minutes.get(minute, 0) + 1
        hours[hour] = hours.get(hour, 0) + 1
        self._prune(state)
        return state

    def _prune(self, state: ActivityState) -> None:
        # Keep a lateness margin past the longest window: a late event must still find its bucket.
        if len(state.minutes) + len(state.hours) <= state.prune_at:
            return
        assert state.last_seen_ms is not None
        margin = self.config.allowed_lateness_ms
        oldest_minute = minute_of(state.last_seen_ms - margin) - self._keep_minutes
        state.minutes = {k: n for k, n in state.minutes.items() if k // STRIDE > oldest_minute}
        oldest_hour = hour_of(state.last_seen_ms - margin) - self._keep_hours
        state.hours = {k: n for k, n in state.hours.items() if k // STRIDE > oldest_hour}
        state.prune_at = max(32, 2 * (len(state.minutes) + len(state.hours)))

    def values(self, state: ActivityState, as_of_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for buckets, now, (widths, outputs) in ((state.minutes, minute_of(as_of_ms), self._minute_plan),
                                                (state.hours, hour_of(as_of_ms), self._hour_plan)):
            totals = _windows(buckets, now, widths)
            for i, keys in outputs:
                window = totals[i]
                for kind, key in keys:
                    out[key] = window[kind]
        lifetime = state.lifetime
        for kind, key in self._total_keys:
            out[key] = lifetime.get(kind, 0)
        out["first_seen_ms"] = state.first_seen_ms
        out["last_seen_ms"] = state.last_seen_ms
        out["active_days"] = len(state.days)
        return out
