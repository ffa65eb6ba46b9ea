"""Most popular items, overall and per category, kept exactly for the top ``k`` with bounded memory.

Counts only grow, so a leaderboard of at most ``2 * k`` items, cut back to the ``k``
strongest when full, always holds the true top ``k``: an item outside it has a count at
or below the board's minimum, and enters when it passes it. All counts are kept per item
(bounded by ``max_items``, least recently updated evicted); boards per category likewise.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class Board:
    """The ``k`` items with the highest counts (ties by id), from monotonic count updates."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.items: dict[str, float] = {}
        self.floor = 0.0

    def offer(self, item: str, count: float) -> None:
        if item in self.items or count > self.floor or len(self.items) < 2 * self.k:
            self.items[item] = count
            if len(self.items) > 2 * self.k:
                kept = heapq.nsmallest(self.k, self.items.items(), key=lambda kv: (-kv[1], kv[0]))
                self.items = dict(kept)
                self.floor = kept[-1][1]

    def top(self, n: int, exclude: Iterable[str] = ()) -> list[str]:
        skip = set(exclude)
        ranked = sorted(self.items.items(), key=lambda kv: (-kv[1], kv[0]))
        return [item for item, _ in ranked if item not in skip][:n]


class Popularity:
    """Weighted interaction counts per item, with overall and per-category leaderboards."""

    def __init__(self, top: int = 200, category_top: int = 20, max_items: int = 50_000) -> None:
        self.max_items = max_items
        self.category_top = category_top
        self.counts: dict[str, float] = {}
        self.overall = Board(top)
        self.categories: dict[str, Board] = {}
        self.category_counts: dict[tuple[str, str], float] = {}

    def add(self, item: str, category: str | None, weight: float) -> None:
        count = self.counts.pop(item, 0.0) + weight
        self.counts[item] = count
        if len(self.counts) > self.max_items:
            del self.counts[next(iter(self.counts))]
        self.overall.offer(item, count)
        if category:
            key = (category, item)
            in_category = self.category_counts.pop(key, 0.0) + weight
            self.category_counts[key] = in_category
            if len(self.category_counts) > self.max_items:
                del self.category_counts[next(iter(self.category_counts))]
            board = self.categories.pop(category, None) or Board(self.category_top)
            board.offer(item, in_category)
            self.categories[category] = board
            if len(self.categories) > self.max_items:
                del self.categories[next(iter(self.categories))]

    def top(self, n: int, exclude: Iterable[str] = ()) -> list[str]:
        return self.overall.top(n, exclude)

    def top_in(self, category: str, n: int, exclude: Iterable[str] = ()) -> list[str]:
        board = self.categories.get(category)
        return board.top(n, exclude) if board else []
