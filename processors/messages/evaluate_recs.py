"""Hit rate at 10 of the recommender against a most-popular baseline, on the Taobao sample.

For every buyer, the last purchase is hidden: at its time T each recommender, trained
only on events strictly before T (every customer's), proposes 10 items for the buyer,
and it is a hit when the hidden item is among them. Events are replayed in time order
and all queries at time T run before any event at T is learned, so nothing leaks.

Two settings, each against most-popular under the same exclusions:

- ``discovery``: items the buyer interacted with before T are never recommended (what a
  "you may also like" block does);
- ``rebuy_allowed``: only items the buyer already bought are excluded, so items they
  viewed or carted can come back (what a cart or browse reminder does). A third
  reference shows how much of that is re-targeting: the buyer's own 10 most recently
  touched items not yet bought; and the variant messages use for reminders puts those
  first and fills with co-view/co-buy.

Run: ``journey recommend-eval --replay taobao:FILE [--k 10]`` (default: the shared sample). Any
replay kind with products works (``olist:DIR`` has orders only). The caller reads the replay
(``streams.sources.open_source``) and passes its records in: the domain never reads sources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Protocol

import orjson

from processors.messages.config import Recommendations
from processors.messages.recommend import KIND_OF_TYPE, Interaction, Recommender

DEFAULT_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "taobao_userbehavior_sample.csv"
K = 10


@dataclass
class HitRates:
    buyers: int = 0
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def rate(self, name: str) -> float:
        return self.hits[name] / self.buyers if self.buyers else 0.0


class ReplayRecord(Protocol):
    """What is read of a replayed record (``streams.sources.SourceRecord`` is one)."""

    @property
    def value(self) -> bytes: ...
    @property
    def event_time(self) -> datetime | None: ...


def interactions(records: Iterable[ReplayRecord]) -> list[tuple[str, Interaction]]:
    """(customer, interaction) of every record with a product, in the records' (event-time) order."""
    out = []
    for record in records:
        body = orjson.loads(record.value)
        kind = KIND_OF_TYPE.get(body["type"])
        if kind is None:
            continue
        item = body["items"][0] if kind == "buy" else body
        t_ms = round(record.event_time.timestamp() * 1000)  # type: ignore[union-attr]
        out.append((body["customer_id"], Interaction(t_ms, item["product_id"], item.get("category_id"), kind)))
    return out


def evaluate(events: list[tuple[str, Interaction]], config: Recommendations | None = None, k: int = K) -> HitRates:
    """Hit rates at ``k`` per recommender and setting (see the module docstring)."""
    last_buy: dict[str, int] = {}
    for index, (customer, seen) in enumerate(events):
        if seen.kind == "buy":
            last_buy[customer] = index
    held_out = set(last_buy.values())
    model = Recommender(config)
    recent: dict[str, list[Interaction]] = defaultdict(list)
    touched: dict[str, set[str]] = defaultdict(set)
    bought: dict[str, set[str]] = defaultdict(set)
    result = HitRates()
    indexed = list(enumerate(events))
    for _, group in groupby(indexed, key=lambda pair: pair[1][1].t_ms):
        batch = list(group)
        for index, (customer, seen) in batch:  # queries first: the model has only seen events before T
            if index not in held_out:
                continue
            result.buyers += 1
            for setting, exclude in (("discovery", touched[customer]), ("rebuy_allowed", bought[customer])):
                recs = model.recommend(recent[customer], k, exclude)
                popular = model.popular.top(k, exclude)
                result.hits[f"cooccurrence/{setting}"] += seen.item in recs
                result.hits[f"popular/{setting}"] += seen.item in popular
            viewed = [i.item for i in reversed(recent[customer]) if i.item not in bought[customer]]
            result.hits["recently_viewed/rebuy_allowed"] += seen.item in list(dict.fromkeys(viewed))[:k]
            hybrid = model.recommend(recent[customer], k, bought[customer], touched_first=True)
            result.hits["touched_first/rebuy_allowed"] += seen.item in hybrid
        for _, (customer, seen) in batch:
            model.learn(recent[customer], seen)
            touched[customer].add(seen.item)
            if seen.kind == "buy":
                bought[customer].add(seen.item)
    return result


ROWS = (
    ("discovery", "co-view/co-buy", "cooccurrence/discovery"),
    ("discovery", "most popular", "popular/discovery"),
    ("rebuy_allowed", "co-view/co-buy", "cooccurrence/rebuy_allowed"),
    ("rebuy_allowed", "recent items first, then co-view/co-buy", "touched_first/rebuy_allowed"),
    ("rebuy_allowed", "recently touched items only", "recently_viewed/rebuy_allowed"),
    ("rebuy_allowed", "most popular", "popular/rebuy_allowed"),
)


def table(result: HitRates, source: str, k: int = K) -> str:
    """The hit rates as a Markdown table, under a line saying what was measured."""
    lines = [f"Hit rate at {k}: last purchase of each of {result.buyers} buyers hidden ({source})", "",
             f"| setting | recommender | hit rate at {k} | hits |", "|---|---|---|---|"]
    lines += [f"| {setting} | {name} | {result.rate(key):.4f} | {result.hits[key]} |" for setting, name, key in ROWS]
    return "\n".join(lines)

