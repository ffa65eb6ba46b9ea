"""The scoring processor: profiles and orders in, scores and labels out (one customer's state at a time).

Hosted by ``streams/scoring.py`` (a stateful stream worker on ``customer-features`` and
``orders``, co-partitioned by customer) and by the in-process replay. It reads the models,
never trains them: in the stream the models are the trainer's latest snapshot, in a replay
the trainer's live objects. A prediction is scored when the profile changed in a way that
matters (``moments``), withheld until the customer has the history the model needs, and
held for learning at most once per ``hold_every`` per model (``labels``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from processors.scoring.bands import band
from processors.scoring.config import MODELS, ScoringConfig
from processors.scoring.labels import CustomerScoring, Held, Label, expire, hold, on_order, seen_profile
from processors.scoring.model import OnlineModel, new_models
from processors.scoring.moments import CHURN_FIELDS, PROPENSITY_FIELDS, changed, signature
from processors.scoring.records import score_record
from processors.scoring.vector import as_of_ms, inputs, vector
from schemas.validation import Limits, Rejected, validate

PROFILE_TOPIC = "customer-features"
ORDERS_TOPIC = "orders"
SCORES_TOPIC = "scores"
LABELS_TOPIC = "model-labels"
FIELDS = {"purchase_propensity": PROPENSITY_FIELDS, "churn": CHURN_FIELDS}

Output = tuple[str, bytes | None, bytes]


class ScoringProcessor:
    """Per-customer scoring; ``models`` is replaced whenever a newer snapshot is loaded."""

    name = "scoring"

    def __init__(self, config: ScoringConfig, models: dict[str, OnlineModel] | None = None,
                 on_label: Callable[[Label], None] | None = None, limits: Limits | None = None) -> None:
        self.config = config
        self.models = models or new_models(config)
        self.on_label = on_label  # a replay learns at once; a stream host publishes labels instead
        self.limits = limits or Limits()
        self.scored = 0
        self.held = 0

    def new_state(self, key: str) -> CustomerScoring:
        return CustomerScoring(key)

    def process(self, state: CustomerScoring, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        if value is None:
            return []
        if topic == PROFILE_TOPIC:
            return self.on_profile(state, orjson.loads(value))
        if topic == ORDERS_TOPIC:
            try:
                event = validate(topic, value, key, self.limits)
            except Rejected:
                return []  # dead-lettered by the sink
            if event.type != "order_placed":
                return []
            return self._labels(on_order(state, round(event.event_time.timestamp() * 1000)))
        return []

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
        seen_profile(state, t_ms)
        outputs: list[Output] = []
        labels: list[Label] = []
        full: dict[str, float] | None = None
        key = state.customer_id.encode()
        config = self.config
        for name in MODELS:
            if not self.eligible(name, profile):
                continue
            current = signature(profile, FIELDS[name])
            if not changed(state.signatures.get(name), current):
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
                                  model.contributions(x, config.learning.top_features))
            outputs.append((SCORES_TOPIC, key, orjson.dumps(record)))
            self.scored += 1
            every = (config.purchase_propensity.hold_every_ms if name == "purchase_propensity"
                     else config.churn.hold_every_ms)
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
