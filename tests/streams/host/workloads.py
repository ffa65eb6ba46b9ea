"""The four processors as factories (module level: the determinism check imports them in another
interpreter) and data-shaped input for each: the generator's events, run down the pipeline in the
harness (features -> profiles, scoring -> scores, triggers -> triggers), as the workers would."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import orjson

from processors.features.build import build_features
from processors.features.processor import FeaturesProcessor
from processors.messages.processor import MessagesProcessor
from processors.scoring.config import load_scoring
from processors.scoring.processor import ScoringProcessor
from processors.triggers.processor import TriggersProcessor
from streams.host.testing import Harness, Record
from streams.sources.generator import generate

#: Where each derived record's event time is.
TIME_FIELD = {"customer-features": "as_of", "scores": "scored_at", "triggers": "fired_at"}


def features() -> FeaturesProcessor:
    return build_features()


def scoring() -> ScoringProcessor:
    return ScoringProcessor(load_scoring())


def triggers() -> TriggersProcessor:
    return TriggersProcessor()


def messages() -> MessagesProcessor:
    return MessagesProcessor()


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def _derived(outputs: list[tuple[str, bytes | None, bytes | None]], topic: str) -> list[Record]:
    """``topic``'s records among ``outputs``, with their event time."""
    return [(t, key, value, _ms(orjson.loads(value)[TIME_FIELD[t]])) for t, key, value in outputs
            if t == topic and key is not None and value is not None]


def _merged(*streams: list[Record]) -> list[Record]:
    return sorted((r for s in streams for r in s), key=lambda r: r[3])  # stable: each stream keeps its order


@cache
def events(customers: int = 30, days: int = 12, seed: int = 11) -> list[Record]:
    return [(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000))
            for r in generate(customers=customers, days=days, seed=seed)]


def _band_changes(scores: list[Record]) -> list[Record]:
    """Each customer's first score per model and every one whose band differs from the previous (what triggers
    react to: the re-scores in between repeat the band)."""
    last: dict[tuple[bytes, str], str] = {}
    out = []
    for record in scores:
        body = orjson.loads(record[2] or b"{}")
        if last.get((record[1], body["model"])) != body["band"]:
            last[(record[1], body["model"])] = body["band"]
            out.append(record)
    return out


@cache
def workloads() -> dict[str, list[Record]]:
    """Each processor's input, made by the processors upstream of it."""
    inputs = events()
    profiles = _derived(Harness(features).run(inputs).outputs, "customer-features")
    orders = [r for r in inputs if r[0] == "orders"]
    scored = _merged(profiles, orders)
    scores = _derived(Harness(scoring, tail_ms=0).run(scored).outputs, "scores")  # re-scores up to the last event
    triggered = _merged(inputs, profiles, _band_changes(scores))
    fired = _derived(Harness(triggers, tail_ms=0).run(triggered).outputs, "triggers")
    return {"features": inputs, "scoring": scored, "triggers": triggered,
            "messages": _merged(inputs, profiles, fired)}


def counts(name: str) -> dict[str, Any]:
    """How many records of each topic a workload has (for the tests' sanity checks)."""
    out: dict[str, int] = {}
    for topic, *_ in workloads()[name]:
        out[topic] = out.get(topic, 0) + 1
    return out
