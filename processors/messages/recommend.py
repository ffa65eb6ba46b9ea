"""Product recommendations: co-viewed and co-bought items of what the customer touched, then the
most popular items of their top categories, then the most popular items overall.

The shared model (co-occurrence and popularity) learns from every clickstream and order
event with a product; each customer's recent interactions (bounded, kept in the
customer's state so they pickle with it) are both the context that pairs are learned
from and the seeds of that customer's recommendations.

Scoring: each seed (the customer's distinct recent items, newest first) adds its
neighbours' weights times ``0.8 ** rank``; candidates are ranked by score, ties by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from processors.messages.config import Recommendations
from processors.messages.cooccurrence import CoOccurrence
from processors.messages.popularity import Popularity

Kind = Literal["view", "wishlist", "cart", "buy"]
#: Popularity weight per interaction (as the preference features weigh them).
KIND_WEIGHTS: dict[str, float] = {"view": 1.0, "wishlist": 2.0, "cart": 3.0, "buy": 5.0}
#: clickstream / order event type -> interaction kind.
KIND_OF_TYPE: dict[str, Kind] = {"product_view": "view", "add_to_wishlist": "wishlist", "add_to_cart": "cart",
                                 "order_placed": "buy"}
SEEDS = 10
SEED_DECAY = 0.8


@dataclass(frozen=True, slots=True)
class Interaction:
    t_ms: int
    item: str
    category: str | None
    kind: str


class Recommender:
    """The shared model plus the rules that turn a customer's recent items into recommendations."""

    def __init__(self, config: Recommendations | None = None) -> None:
        self.config = config or Recommendations()
        self.window_ms = self.config.window_minutes * 60_000
        self.pairs = CoOccurrence(self.config.max_items, self.config.max_neighbors)
        self.popular = Popularity(category_top=self.config.category_items, max_items=self.config.max_items)

    def learn(self, recent: list[Interaction], seen: Interaction) -> None:
        """Learn pairs of ``seen`` with the customer's ``recent`` items, then append it (bounded)."""
        viewed: set[str] = set()
        bought: set[str] = set()
        for before in recent:
            if before.item == seen.item:
                continue
            if abs(seen.t_ms - before.t_ms) <= self.window_ms:
                viewed.add(before.item)
            if seen.kind == "buy" and before.kind == "buy":
                bought.add(before.item)
        for item in sorted(viewed):
            self.pairs.add(item, seen.item, self.config.view_weight)
        for item in sorted(bought):
            self.pairs.add(item, seen.item, self.config.buy_weight)
        self.popular.add(seen.item, seen.category, KIND_WEIGHTS[seen.kind])
        recent.append(seen)
        if len(recent) > self.config.recent_items:
            del recent[: len(recent) - self.config.recent_items]

    def recommend(self, recent: list[Interaction], n: int, exclude: set[str] | frozenset[str] = frozenset(),
                  categories: list[str] | None = None, extra_seeds: tuple[str, ...] = (),
                  touched_first: bool = False) -> list[str]:
        """Up to ``n`` items for a customer, never one in ``exclude``.

        ``touched_first`` puts the customer's own recent items (not excluded, newest first)
        ahead of the co-occurrence ranking: a reminder shows what they looked at first.
        """
        seeds: list[str] = []
        for item in (*extra_seeds, *(i.item for i in reversed(recent))):
            if item not in seeds:
                seeds.append(item)
            if len(seeds) == SEEDS:
                break
        scores: dict[str, float] = {}
        for rank, seed in enumerate(seeds):
            factor = SEED_DECAY ** rank
            for item, weight in self.pairs.related(seed).items():
                if item not in exclude:
                    scores[item] = scores.get(item, 0.0) + weight * factor
        picked = [item for item in seeds if item not in exclude][:n] if touched_first else []
        ranked = (item for item, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))
        picked.extend(item for item in ranked if item not in picked)
        del picked[n:]
        if len(picked) < n:
            taken = set(exclude) | set(picked)
            for category in categories if categories is not None else self.categories_of(recent):
                for item in self.popular.top_in(category, n - len(picked), taken):
                    picked.append(item)
                    taken.add(item)
                if len(picked) >= n:
                    break
            if len(picked) < n:
                picked.extend(self.popular.top(n - len(picked), taken))
        return picked[:n]

    @staticmethod
    def categories_of(recent: list[Interaction], top: int = 3) -> list[str]:
        """The customer's top categories from their recent items (weighted like popularity), ties by name."""
        weights: dict[str, float] = {}
        for i in recent:
            if i.category:
                weights[i.category] = weights.get(i.category, 0.0) + KIND_WEIGHTS[i.kind]
        return [c for c, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
