"""Item-to-item co-occurrence: which items the same customers viewed together and bought together.

An incremental, bounded model shared by every customer a worker serves (not per customer).
Memory is bounded by ``max_items`` rows of at most ``2 * max_neighbors`` weights each:
a row that grows past that keeps its ``max_neighbors`` strongest neighbours (ties by id),
and when more than ``max_items`` items have rows the least recently updated row is evicted.
At the shipped 50,000 x 30 that is at most 3 million weights (about 300 MB of Python dicts
in the worst case; a few MB on the Taobao sample).
"""

from __future__ import annotations

import heapq


class CoOccurrence:
    """Symmetric pair weights with bounded rows; ``related(item)`` reads one row."""

    def __init__(self, max_items: int = 50_000, max_neighbors: int = 30) -> None:
        self.max_items = max_items
        self.max_neighbors = max_neighbors
        self.rows: dict[str, dict[str, float]] = {}

    def add(self, a: str, b: str, weight: float) -> None:
        """Strengthen the pair (a, b) in both directions."""
        if a == b:
            return
        self._bump(a, b, weight)
        self._bump(b, a, weight)
        while len(self.rows) > self.max_items:
            del self.rows[next(iter(self.rows))]  # least recently updated (dicts keep insertion order)

    def _bump(self, item: str, other: str, weight: float) -> None:
        row = self.rows.pop(item, None)
        if row is None:
            row = {}
        row[other] = row.get(other, 0.0) + weight
        if len(row) > 2 * self.max_neighbors:
            row = dict(heapq.nsmallest(self.max_neighbors, row.items(), key=lambda kv: (-kv[1], kv[0])))
        self.rows[item] = row  # re-inserted last: most recently updated

    def related(self, item: str) -> dict[str, float]:
        """Neighbour -> weight of ``item`` (empty when unknown)."""
        return self.rows.get(item, {})

    def __len__(self) -> int:
        return len(self.rows)
