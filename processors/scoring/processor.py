"""The scoring processor: profiles and orders in, scores and labels out (one customer's state at a time).

Hosted by ``streams/scoring.py`` (a stateful stream worker on ``customer-features`` and
``orders``, co-partitioned by customer) and by the in-process replay. It reads the models,
never trains them: in the stream the models are the trainer's latest snapshot, in a replay
the trainer's live objects. A prediction is scored when the profile changed in a way that
matters (``moments``), withheld until the customer has the history the model needs, and
held for learning at most once per ``hold_every`` per model (``labels``). Between profiles the
customer is re-scored by the host's timers (``due``/``next_timer``, ``rescore``) with the ages
of the re-scoring time, so a customer who goes quiet does not keep the score of their last event.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import orjson

from processors.output import Output
from processors.scoring.bands import band
from processors.scoring.config import MODELS, ScoringConfig
from processors.scoring.labels import CustomerScoring, Held, Label, expire, hold, on_order, seen_profile
from processors.scoring.model import OnlineModel, new_models
from processors.scoring.moments import CHURN_FIELDS, PROPENSITY_FIELDS, changed, signature
from processors.scoring.records import score_record
from processors.scoring.rescore import RESCORE_HOLD_EVERY_MS, aged, next_rescore
from processors.scoring.vector import as_of_ms, inputs, vector
from schemas.registry import CUSTOMER_FEATURES as PROFILE_TOPIC
from schemas.registry import MODEL_LABELS as LABELS_TOPIC
from schemas.registry import ORDERS as ORDERS_TOPIC
from schemas.registry import SCORES as SCORES_TOPIC
from schemas.validation import Limits, Rejected, validate

FIELDS = {"purchase_propensity": PROPENSITY_FIELDS, "churn": CHURN_FIELDS}



class ScoringProcessor:
    """Per-customer scoring; ``models`` is replaced whenever a newer snapshot is loaded."""

    name = "scoring"
    #: The optional hooks of the host contract (streams/host/contract.py) it implements; the host checks them.
    host_hooks = ("due", "next_timer", "last_event_ms")

    def __init__(self, config: ScoringConfig, models: dict[str, OnlineModel] | None = None,
                 on_label: Callable[[Label], None] | None = None, limits: Limits | None = None,
                 explain: bool = True) -> None:
        self.config = config
        self.explain = explain  # top features on each score (an evaluation replay leaves them out: replay.py)
        self.models = models or new_models(config)
        self.on_label = on_label  # a replay learns at once; a stream host publishes labels instead
        self.limits = limits or Limits()
        self.scored = 0
        self.held = 0
        self.rescored = 0
        self.last_event_ms: int | None = None  # the host's event-time clock (streams/stateful.py)

    def new_state(self, key: str) -> CustomerScoring:
        return CustomerScoring(key)

    def process(self, state: CustomerScoring, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        self.last_event_ms = None
        if value is None:
            return []
        if topic == PROFILE_TOPIC:
            profile = orjson.loads(value)
            self.last_event_ms = as_of_ms(profile)
            return self.on_profile(state, profile)
        if topic == ORDERS_TOPIC:
            try:
                event = validate(topic, value, key, self.limits)
            except Rejected:
                return []  # dead-lettered by the sink
            t_ms = round(event.event_time.timestamp() * 1000)
            self.last_event_ms = t_ms
            if event.type != "order_placed":
                return []
            if t_ms not in state.orders:
                bisect.insort(state.orders, t_ms)
            return self._labels(on_order(state, t_ms))
        return []

    def next_timer(self, state: CustomerScoring) -> int | None:
        """When the host should call ``due``: the next re-scoring time plus the allowed lateness (profiles of
        the customer up to that time have had time to arrive); None before the customer's first score."""
        return None if state.rescore_ms is None else state.rescore_ms + self.config.labels.lateness_ms

    def due(self, state: CustomerScoring, now_ms: int) -> list[Output]:
        """The host's clock passed ``now_ms``: re-score at every scheduled time before ``now_ms`` - lateness."""
        return self.rescore_before(state, now_ms - self.config.labels.lateness_ms)

    def rescore_before(self, state: CustomerScoring, before_ms: int) -> list[Output]:
        """Re-score at every scheduled time before ``before_ms`` with the newest profile aged to that time."""
        outputs: list[Output] = []
        every = self.config.rescore_every_ms
        while state.rescore_ms is not None and state.rescore_ms < before_ms and state.profile is not None:
            t_ms = state.rescore_ms
            profile = aged(state.profile, state.profile_ms, t_ms, state.orders)
            outputs += self._score(state, profile, t_ms, always=True)
            self.rescored += 1
            state.rescored_ms = t_ms
            state.rescore_ms = next_rescore(state.anchor_ms, t_ms, every)
        return outputs

    def emit(self, key: str, state: CustomerScoring) -> list[Output]:
        return []  # scores and labels go out as they happen

    def expire(self, state: CustomerScoring, watermark_ms: int) -> list[Output]:
        """Labels of held predictions whose horizon the watermark has passed."""
        return self._labels(expire(state, watermark_ms))

    def eligible(self, model: str, profile: dict[str, Any]) -> bool:
        """Whether the customer has the history ``model`` needs (scores are withheld before)."""
        if model == "churn":
            return (profile["features"].get("orders_total") or 0) >= self.config.churn.min_orders
        return int(profile.get("events_total") or 0) >= self.config.purchase_propensity.min_events

    def on_profile(self, state: CustomerScoring, profile: dict[str, Any]) -> list[Output]:
        t_ms = as_of_ms(profile)
        if t_ms < state.profile_ms:
            return []  # an older profile than one already scored (a redelivery)
        # Re-scorings due before this profile come first, with the profile before it (as a replay fires them),
        # whether or not the host's clock has reached them yet.
        outputs = self.rescore_before(state, t_ms)
        seen_profile(state, t_ms)
        state.profile = {"as_of": profile["as_of"], "events_total": profile.get("events_total"),
                         "features": profile["features"]}
        scored = self._score(state, profile, t_ms)
        if any(topic == SCORES_TOPIC for topic, _, _ in scored):  # a profile that made no score moves no timer
            state.anchor_ms = t_ms
            # Never back to a time already re-scored (a profile older than a timer the host fired already).
            state.rescore_ms = next_rescore(t_ms, max(t_ms, state.rescored_ms), self.config.rescore_every_ms)
        return outputs + scored

    def _score(self, state: CustomerScoring, profile: dict[str, Any], t_ms: int, always: bool = False
               ) -> list[Output]:
        """Score the models due at ``t_ms`` (all eligible ones when ``always``); hold predictions for learning."""
        outputs: list[Output] = []
        labels: list[Label] = []
        full: dict[str, float] | None = None
        key = state.customer_id.encode()
        config = self.config
        for name in MODELS:
            if not self.eligible(name, profile):
                continue
            current = signature(profile, FIELDS[name])
            if not always and not changed(state.signatures.get(name), current):
                continue
            state.signatures[name] = current
            if full is None:
                full = vector(profile, t_ms)
            x = inputs(full, config.section(name).inputs)
            model = self.models[name]
            prediction = model.predict(x)
            medium, high = config.cuts(name)
            record = score_record(state.customer_id, name, model.learned, t_ms, prediction.probability,
                                  band(prediction.probability, medium, high), model.cold,
                                  model.contributions(x, config.learning.top_features) if self.explain else {})
            outputs.append((SCORES_TOPIC, key, orjson.dumps(record)))
            self.scored += 1
            every = (config.purchase_propensity.hold_every_ms if name == "purchase_propensity"
                     else config.churn.hold_every_ms)
            if always:
                every = max(every, RESCORE_HOLD_EVERY_MS)
            last = state.last_hold_ms.get(name)
            if last is None or t_ms - last >= every:
                state.last_hold_ms[name] = t_ms
                self.held += 1
                labels += hold(state, Held(name, t_ms, t_ms + config.horizon_ms(name), x, prediction.raw,
                                           prediction.probability, model.learned))
        return outputs + self._labels(labels)

    def _labels(self, labels: list[Label]) -> list[Output]:
        if self.on_label is not None:
            for label in labels:
                self.on_label(label)
            return []
        return [(LABELS_TOPIC, label.customer_id.encode(), orjson.dumps(label.record())) for label in labels]
