"""In-process replay: source records -> features -> scoring -> trainer, in event-time order, no broker.

This is the scoring pipeline of ``journey run`` without Kafka, for ``journey evaluate``,
tests and benchmarks. Labels are learned the moment they are known, so a prediction is
always made by the model as it was at the prediction's time; a replay of the same records
gives the same scores, byte for byte. The watermark is the newest event time seen minus
the allowed lateness; held predictions are expired through a heap of their deadlines.
Re-scoring timers (``rescore.py``) fire in event time, each before the first record after
it, in time order: the clock of a timer at ``r`` is ``r``, so the labels released by then
(horizon ended before ``r`` minus the lateness) are learned before it scores, and none later.

A profile is computed (the costly step) only after an event that can move a scoring
signature: orders and chat messages, cart and checkout events, and a clickstream event
that starts a session (more than ``session_gap`` after the customer's previous one).

An evaluation needs the labelled samples, not every score: ``keep_scores=False`` counts the scores
instead of keeping them (a quiet customer is re-scored daily: two years of Olist are tens of millions
of score records, gigabytes as dicts), and ``explain=False`` leaves the top features out of them
(their log-likelihood terms cost more than the prediction). Probabilities, labels and models are the same.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from processors.features.build import build_features
from processors.features.engine import CustomerState
from processors.output import Output
from processors.scoring.config import ScoringConfig
from processors.scoring.labels import CustomerScoring, Label
from processors.scoring.processor import ORDERS_TOPIC, ScoringProcessor
from processors.scoring.trainer import Trainer


class SourceRecord(Protocol):
    """What a replay reads: one input record (``streams.sources.record.SourceRecord`` is one; the caller
    opens the source, so processors import no host code)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...
    @property
    def event_time(self) -> datetime | None: ...


#: Clickstream types after which a profile is always recomputed (they move the cart or checkout).
_CART_TYPES = (b'"add_to_cart"', b'"remove_from_cart"', b'"checkout_started"')


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled prediction, as the evaluation needs it."""

    customer_id: str
    model: str
    predicted_at_ms: int
    labelled_at_ms: int
    label: bool
    probability: float  # served (calibrated), made before the label was learned
    x: dict[str, float]


@dataclass
class ReplayResult:
    scores: list[dict[str, Any]] = field(default_factory=list)  # empty unless keep_scores
    scored: int = 0  # scores made (kept or not)
    samples: list[Sample] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    trainer: Trainer | None = None


def replay(records: Iterable[SourceRecord], config: ScoringConfig, session_gap_ms: int = 1_800_000,
           progress: Callable[[int], None] | None = None, keep_scores: bool = True,
           explain: bool = True) -> ReplayResult:
    """Replay ``records`` (event-time order) through features, scoring and the trainer."""
    result = ReplayResult()

    def scored(outputs: list[Output]) -> None:
        for _, _, value in outputs:
            result.scored += 1
            if keep_scores:
                result.scores.append(orjson.loads(value))

    trainer = Trainer(config)
    result.trainer = trainer

    def learned(label: Label) -> None:
        h = label.held
        result.samples.append(Sample(label.customer_id, h.model, h.t_ms, label.labelled_at_ms, label.label,
                                     h.probability, h.x))
        for kind, record in trainer.learn(h.model, h.x, label.label, h.probability, label.labelled_at_ms):
            (result.metrics if kind == "metrics" else result.drift).append(record)

    features = build_features(lateness_ms=config.labels.lateness_ms, session_gap_ms=session_gap_ms)
    scoring = ScoringProcessor(config, trainer.models, on_label=learned, explain=explain)
    f_states: dict[str, CustomerState] = {}
    s_states: dict[str, CustomerScoring] = {}
    last_click: dict[str, int] = {}
    deadlines: list[tuple[int, str]] = []
    timers: list[tuple[int, str]] = []
    lateness = config.labels.lateness_ms
    newest = None

    def expire_until(watermark: int) -> None:
        while deadlines and deadlines[0][0] < watermark:
            _, due = heapq.heappop(deadlines)
            scoring.expire(s_states[due], watermark)

    def fire_timers(before: int) -> None:
        """Re-score every customer whose timer is before ``before``, in time order, at the timer's time."""
        while timers and timers[0][0] < before:
            r, customer = heapq.heappop(timers)
            ss = s_states[customer]
            if ss.rescore_ms != r:
                continue  # rescheduled by a newer profile
            expire_until(r - lateness)
            held_before = len(ss.held)
            scored(scoring.rescore_before(ss, r + 1))
            for h in ss.held[held_before:]:
                heapq.heappush(deadlines, (h.deadline_ms, customer))
            if ss.rescore_ms is not None:
                heapq.heappush(timers, (ss.rescore_ms, customer))

    for n, record in enumerate(records, 1):
        if progress is not None and n % 5000 == 0:
            progress(n)
        customer = record.key.decode()
        fs = f_states.get(customer)
        if fs is None:
            fs = f_states[customer] = features.new_state(customer)
        before = fs.events
        features.process(fs, record.topic, record.value, record.key)
        if fs.events == before or record.event_time is None:
            continue  # invalid, late or a duplicate: scoring does not see it either
        result.events += 1
        t_ms = round(record.event_time.timestamp() * 1000)
        fire_timers(t_ms)
        newest = t_ms if newest is None or t_ms > newest else newest
        expire_until(newest - lateness)  # the labels released by now are learned before this record scores
        ss = s_states.get(customer)
        if ss is None:
            ss = s_states[customer] = scoring.new_state(customer)
        if record.topic == ORDERS_TOPIC:
            scoring.process(ss, ORDERS_TOPIC, record.value, record.key)
        held_before = len(ss.held)  # a profile only adds held predictions (an order only records its outcome)
        if _may_matter(record, t_ms, last_click, session_gap_ms):
            rescore = ss.rescore_ms
            scored(scoring.on_profile(ss, features.profile(fs)))
            if ss.rescore_ms is not None and ss.rescore_ms != rescore:
                heapq.heappush(timers, (ss.rescore_ms, customer))
        for h in ss.held[held_before:]:  # every prediction held now (both models can hold at one profile)
            heapq.heappush(deadlines, (h.deadline_ms, customer))
    if newest is not None:
        fire_timers(newest)  # the clock ends at the newest event, as a host's does once every input is idle
    return result


def _may_matter(record: SourceRecord, t_ms: int, last_click: dict[str, int], gap_ms: int) -> bool:
    """Whether this event can change a scoring signature (see the module docstring)."""
    if record.topic != "clickstream":
        return record.topic in ("orders", "chat")
    customer = record.key.decode()
    previous = last_click.get(customer)
    last_click[customer] = t_ms if previous is None else max(previous, t_ms)
    if previous is None or t_ms - previous > gap_ms:
        return True
    value = record.value
    return any(kind in value for kind in _CART_TYPES)
