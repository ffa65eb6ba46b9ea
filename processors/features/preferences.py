"""Preferences: top categories and brands, weighted by interaction and decayed with time.

Each interaction adds its weight (view 1, wishlist 2, cart 3, order 5) to a per-day
bucket of its category (and brand). As of day D, a bucket of day d scores
weight * 0.5 ** ((D - d) / half_life); buckets older than the horizon are dropped. Day
buckets of integers keep it exact and order-independent; ties rank by name.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from sys import intern
from typing import Any, ClassVar

from processors.features.base import Observed, day_of
from processors.features.config import FeatureConfig

WEIGHTS = {"product_view": 1, "add_to_wishlist": 2, "add_to_cart": 3, "order_placed": 5}


@dataclass(slots=True)
class PreferenceState:
    categories: dict[str, dict[int, int]] = field(default_factory=dict)
    brands: dict[str, dict[int, int]] = field(default_factory=dict)
    newest_day: int | None = None

    def __post_init__(self) -> None:
        if self.categories or self.brands:  # restored: one copy of each name for every customer
            self.categories = {intern(name): days for name, days in self.categories.items()}
            self.brands = {intern(name): days for name, days in self.brands.items()}


def _add(table: dict[str, dict[int, int]], name: str, day: int, weight: int) -> None:
    days = table.get(name)
    if days is None:  # names come from a small catalogue: one copy shared by every customer
        table[intern(name)] = {day: weight}
    else:
        days[day] = days.get(day, 0) + weight


class Preferences:
    name: ClassVar[str] = "preferences"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: FeatureConfig) -> None:
        self.half_life = config.preference_half_life_days
        self.horizon = config.preference_horizon_days
        self.top = config.preference_top

    def init(self) -> PreferenceState:
        return PreferenceState()

    def update(self, state: PreferenceState, seen: Observed) -> PreferenceState:
        weight = WEIGHTS.get(seen.type)
        if weight is None:
            return state
        day = day_of(seen.t_ms)
        if seen.type == "order_placed":
            for item in seen.event.items:
                if item.category_id:
                    _add(state.categories, item.category_id, day, weight)
        else:
            if seen.event.category_id:
                _add(state.categories, seen.event.category_id, day, weight)
            if seen.event.brand:
                _add(state.brands, seen.event.brand, day, weight)
        if state.newest_day is None or day > state.newest_day:
            state.newest_day = day
            self._prune(state)
        return state

    def _prune(self, state: PreferenceState) -> None:
        assert state.newest_day is not None
        oldest = state.newest_day - self.horizon
        for table in (state.categories, state.brands):
            for name in [n for n, days in table.items() if max(days) <= oldest]:
                del table[name]

    def ranked(self, table: dict[str, dict[int, int]], today: int) -> list[tuple[str, float]]:
        if not table:
            return []
        factors: dict[int, float] = {}  # decay per day, computed once per read
        scores = []
        for name, days in table.items():
            score = 0.0
            for d in sorted(days):
                age = today - d
                if 0 <= age < self.horizon:
                    factor = factors.get(age)
                    if factor is None:
                        factor = factors[age] = 0.5 ** (age / self.half_life)
                    score += days[d] * factor
            if score > 0:
                scores.append((name, score))
        return heapq.nsmallest(self.top, scores, key=lambda item: (-item[1], item[0]))

    def values(self, state: PreferenceState, as_of_ms: int) -> dict[str, Any]:
        today = day_of(as_of_ms)
        return {
            "top_categories": ",".join(name for name, _ in self.ranked(state.categories, today)),
            "top_brands": ",".join(name for name, _ in self.ranked(state.brands, today)),
        }
