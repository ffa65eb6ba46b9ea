"""Delayed labels: a prediction's inputs are held until its outcome is known, in event time.

A prediction made at ``t`` (the profile's as-of time) with horizon ``H`` is labelled by
the first ``order_placed`` with time in ``(t, t + H]``: purchase propensity positive,
churn negative (the customer came back). When the watermark (the newest event time seen
minus the allowed lateness) passes ``t + H`` with no such order, the label is the
opposite: propensity negative, churn positive. An order at or before ``t`` is already in
the profile, and nothing after ``t`` is in the inputs, so no label uses information from
after the prediction time in its inputs, and no input leaks the label.

An order can reach the scorer before the profile it follows (the features processor
emits profiles once per flush): orders newer than the newest profile are kept, and a
prediction held later is labelled at once when one of them falls in its horizon.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Held:
    """One prediction waiting for its label."""

    model: str
    t_ms: int
    deadline_ms: int
    x: dict[str, float]
    raw: float
    probability: float
    version: int


@dataclass(slots=True)
class Label:
    """A held prediction with its outcome, ready to learn from."""

    customer_id: str
    held: Held
    label: bool
    labelled_at_ms: int  # the order's time, or the horizon's end

    def record(self) -> dict[str, Any]:
        """The ``model-labels`` record (``schemas.models.ModelLabel``), times in epoch ms."""
        h = self.held
        return {"customer_id": self.customer_id, "model": h.model, "predicted_at_ms": h.t_ms,
                "labelled_at_ms": self.labelled_at_ms, "label": self.label, "features": h.x,
                "raw_probability": h.raw, "probability": h.probability, "model_version": h.version}


#: Which label an order inside the horizon gives each model (the expired horizon gives the opposite).
ORDER_LABEL = {"purchase_propensity": True, "churn": False}


@dataclass(slots=True)
class CustomerScoring:
    """Everything the scorer keeps per customer; plain containers, so it pickles."""

    customer_id: str
    profile_ms: int = -1  # as-of time of the newest profile seen
    newest_ms: int = -1  # newest event time seen (profiles and orders)
    signatures: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # model -> signature last scored
    last_hold_ms: dict[str, int] = field(default_factory=dict)  # model -> time of the last held prediction
    held: list[Held] = field(default_factory=list)  # in prediction-time order
    early_orders: list[int] = field(default_factory=list)  # sorted times of orders newer than profile_ms

    @property
    def next_deadline_ms(self) -> int | None:
        return min((h.deadline_ms for h in self.held), default=None)


def hold(state: CustomerScoring, held: Held) -> list[Label]:
    """Keep a prediction until its label is known; label it now if an early order already decides it."""
    i = bisect.bisect_right(state.early_orders, held.t_ms)
    if i < len(state.early_orders) and state.early_orders[i] <= held.deadline_ms:
        return [Label(state.customer_id, held, ORDER_LABEL[held.model], state.early_orders[i])]
    state.held.append(held)
    return []


def seen_profile(state: CustomerScoring, t_ms: int) -> None:
    """A profile as of ``t_ms`` arrived: orders at or before it can no longer label a new prediction."""
    state.profile_ms = max(state.profile_ms, t_ms)
    state.newest_ms = max(state.newest_ms, t_ms)
    if state.early_orders and state.early_orders[0] <= state.profile_ms:
        state.early_orders = [t for t in state.early_orders if t > state.profile_ms]


def on_order(state: CustomerScoring, t_ms: int) -> list[Label]:
    """An order placed at ``t_ms``: label every held prediction whose horizon contains it."""
    state.newest_ms = max(state.newest_ms, t_ms)
    if t_ms > state.profile_ms:
        bisect.insort(state.early_orders, t_ms)
    labels, kept = [], []
    for h in state.held:
        if h.t_ms < t_ms <= h.deadline_ms:
            labels.append(Label(state.customer_id, h, ORDER_LABEL[h.model], t_ms))
        else:
            kept.append(h)
    state.held = kept
    return labels


def expire(state: CustomerScoring, watermark_ms: int) -> list[Label]:
    """Label every held prediction whose horizon ended before the watermark (no order came)."""
    labels, kept = [], []
    for h in state.held:
        if h.deadline_ms < watermark_ms:
            labels.append(Label(state.customer_id, h, not ORDER_LABEL[h.model], h.deadline_ms))
        else:
            kept.append(h)
    state.held = kept
    return labels
