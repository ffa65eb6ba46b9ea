"""Delayed labels: a prediction's inputs are held until its horizon ends, in event time, whatever the outcome.

A prediction made at ``t`` (the profile's as-of time) with horizon ``H`` has as its outcome
the first ``order_placed`` with time in ``(t, t + H]``: purchase propensity positive, churn
negative (the customer came back); no such order gives the opposite. The order is recorded
on the held prediction when it arrives, but the label is *released* only when the watermark
(the newest event time seen minus the allowed lateness) passes ``t + H``, for both outcomes.
Releasing "came back" labels at the order and "churned" labels only at the horizon's end
made the labels a learner saw at any moment biased towards the early class (the online model
lurched, and its ranking depended on which snapshot a scorer loaded); now every label has the
same latency ``H``, and a label is known at ``labelled_at_ms = t + H`` in event time.

An order at or before ``t`` is already in the profile, and nothing after ``t`` is in the
inputs, so no input leaks the label. An order can reach the scorer before the profile it
follows (the features processor emits profiles once per flush): orders newer than the newest
profile are kept, and a prediction held later records the first one in its horizon.
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
    ordered_ms: int | None = None  # the first order in (t_ms, deadline_ms], once seen: decides the label


@dataclass(slots=True)
class Label:
    """A held prediction with its outcome, ready to learn from."""

    customer_id: str
    held: Held
    label: bool
    labelled_at_ms: int  # the horizon's end: when the label is released, whatever the outcome

    def record(self) -> dict[str, Any]:
        """The ``model-labels`` record (``schemas.models.ModelLabel``), times in epoch ms."""
        h = self.held
        return {"customer_id": self.customer_id, "model": h.model, "predicted_at_ms": h.t_ms,
                "labelled_at_ms": self.labelled_at_ms, "label": self.label, "features": h.x,
                "raw_probability": h.raw, "probability": h.probability, "model_version": h.version,
                "ordered_at_ms": h.ordered_ms}


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
    profile: dict[str, Any] | None = None  # the newest profile scored (re-scoring ages it: rescore.py)
    orders: list[int] = field(default_factory=list)  # sorted times of every order seen (windowed recounts)
    rescore_ms: int | None = None  # when the customer is next re-scored without new events
    anchor_ms: int = -1  # the newest profile that made a score: the re-scoring schedule counts from it
    rescored_ms: int = -1  # the latest re-scoring time fired (the schedule never goes back to it)

    @property
    def next_deadline_ms(self) -> int | None:
        return min((h.deadline_ms for h in self.held), default=None)


def hold(state: CustomerScoring, held: Held) -> list[Label]:
    """Keep a prediction until its horizon ends; record an early order (seen before this profile) in it."""
    i = bisect.bisect_right(state.early_orders, held.t_ms)
    if i < len(state.early_orders) and state.early_orders[i] <= held.deadline_ms:
        held.ordered_ms = state.early_orders[i]
    state.held.append(held)
    return []


def seen_profile(state: CustomerScoring, t_ms: int) -> None:
    """A profile as of ``t_ms`` arrived: orders at or before it can no longer label a new prediction."""
    state.profile_ms = max(state.profile_ms, t_ms)
    state.newest_ms = max(state.newest_ms, t_ms)
    if state.early_orders and state.early_orders[0] <= state.profile_ms:
        state.early_orders = [t for t in state.early_orders if t > state.profile_ms]


def on_order(state: CustomerScoring, t_ms: int) -> list[Label]:
    """An order placed at ``t_ms``: the outcome of every held prediction whose horizon contains it (no label yet)."""
    state.newest_ms = max(state.newest_ms, t_ms)
    if t_ms > state.profile_ms:
        bisect.insort(state.early_orders, t_ms)
    for h in state.held:
        if h.t_ms < t_ms <= h.deadline_ms and (h.ordered_ms is None or t_ms < h.ordered_ms):
            h.ordered_ms = t_ms
    return []


def expire(state: CustomerScoring, watermark_ms: int) -> list[Label]:
    """Release the label of every held prediction whose horizon ended before the watermark."""
    labels, kept = [], []
    for h in state.held:
        if h.deadline_ms < watermark_ms:
            ordered = h.ordered_ms is not None
            labels.append(Label(state.customer_id, h, ORDER_LABEL[h.model] == ordered, h.deadline_ms))
        else:
            kept.append(h)
    state.held = kept
    return labels
