"""The features engine: one customer's state in, one event in, state and outcome out.

It owns what every feature shares: event-time lateness per topic (and, for events the identity stage
re-keyed onto this customer, per topic and origin) and duplicate event ids
(``processors.event_time``: a late event goes to a side output, never into the wrong window),
the customer's as-of time, the journey stage and the segments. The feature
definitions themselves live in their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from sys import intern
from typing import Any

from processors.event_time import MIN_PRUNE_AT, Outcome, admit
from processors.features.acquisition import Acquisition, TouchState
from processors.features.activity import Activity, ActivityState
from processors.features.base import Feature, Observed
from processors.features.cart import Cart, CartState
from processors.features.config import FeatureConfig
from processors.features.orders import Orders, OrdersState
from processors.features.preferences import Preferences, PreferenceState
from processors.features.segments import Segment
from processors.features.service import Scorer, Service, ServiceState
from processors.features.sessions import Sessions, SessionState
from processors.features.stage import journey_stage, order_points


@dataclass(slots=True)
class CustomerState:
    """Everything held for one customer; plain containers, so it pickles."""

    customer_id: str
    #: stream (a topic, or a topic and an origin: processors.event_time.stream_of) -> newest event time (ms)
    newest: dict[str, int] = field(default_factory=dict)
    recent_ids: dict[str, tuple[int, str]] = field(default_factory=dict)  # event id -> (time, stream)
    as_of_ms: int = 0  # newest event time (ms)
    events: int = 0
    late: int = 0
    features: dict[str, Any] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # topic -> offset of the last event applied (hosts)
    prune_ids_at: int = MIN_PRUNE_AT  # size of recent_ids that triggers the next pruning (processors.event_time)
    clock_ms: int = 0  # the host's event-time clock when it last fired this customer's timer (0: never)
    #: Identity resolution (processors/features/identity.py): ``merged_into`` once this profile was merged
    #: into another, ``merged_from`` the merge record ids already folded in. None for most customers.
    identity: dict[str, Any] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the shipped feature states as (class name, slot values): builtins only.

        A host pickles every changed state at each flush; by default pickle looks up each
        state's class and builds a dict of its slots, which makes a small state cost three
        times as much. Feature states of other classes are pickled as they are.
        """
        features = {name: (type(s).__name__, tuple([getattr(s, f) for f in s.__slots__]))
                    if type(s).__name__ in STATE_CLASSES else (None, s) for name, s in self.features.items()}
        return _restore, (self.customer_id, self.newest, self.recent_ids, self.as_of_ms, self.events, self.late,
                          features, self.applied, self.prune_ids_at, self.clock_ms, self.identity)


#: The feature state classes :meth:`CustomerState.__reduce__` packs, by name.
STATE_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    ActivityState, SessionState, CartState, OrdersState, TouchState, PreferenceState, ServiceState)}


def _restore(customer_id: str, newest: dict[str, int], recent_ids: dict[str, tuple[int, str]], as_of_ms: int,
             events: int, late: int, features: dict[str, tuple[str | None, Any]], applied: dict[str, int],
             prune_ids_at: int, clock_ms: int = 0, identity: dict[str, Any] | None = None) -> CustomerState:
    """Unpickle a :class:`CustomerState` packed by its ``__reduce__``.

    Topic and stream names are interned (each record is unpickled on its own, so each restored customer
    would otherwise hold its own copies, as the feature states' names and types: their
    ``__post_init__`` interns them).
    """
    states = {intern(name): payload if kind is None else STATE_CLASSES[kind](*payload)
              for name, (kind, payload) in features.items()}
    topics = {t: intern(t) for t in newest.keys() | applied.keys()}
    recent = {i: (t, topics.get(topic) or intern(topic)) for i, (t, topic) in recent_ids.items()}
    return CustomerState(customer_id, {topics[t]: v for t, v in newest.items()}, recent, as_of_ms, events, late,
                         states, {topics[t]: v for t, v in applied.items()}, prune_ids_at, clock_ms, identity)


def default_features(config: FeatureConfig, scorer: Scorer, negative_below: float) -> list[Feature]:
    return [Activity(config), Sessions(config), Cart(config), Orders(config), Acquisition(config),
            Preferences(config), Service(config, scorer, negative_below)]


class FeatureEngine:
    """Applies events to customer states and reads profiles from them."""

    def __init__(self, config: FeatureConfig, features: list[Feature], segments: list[Segment] | None = None) -> None:
        self.config = config
        self.features = features
        self.segments = segments or []
        self._by_topic: dict[str, list[Feature]] = {}
        carts = [f for f in features if isinstance(f, Cart)]
        self._cart: Cart | None = carts[0] if carts else None
        for feature in features:
            for topic in feature.topics:
                self._by_topic.setdefault(topic, []).append(feature)

    def new_state(self, customer_id: str) -> CustomerState:
        return CustomerState(customer_id, features={f.name: f.init() for f in self.features})

    def apply(self, state: CustomerState, seen: Observed) -> Outcome:
        """Fold one accepted event into the customer's state, unless it is late or a duplicate."""
        outcome = admit(state, seen.stream, seen.t_ms, seen.event_id, self.config.allowed_lateness_ms)
        if outcome is not Outcome.APPLIED:
            if outcome is Outcome.LATE:
                state.late += 1
            return outcome
        if seen.t_ms > state.as_of_ms:
            state.as_of_ms = seen.t_ms
        state.events += 1
        features = state.features
        for feature in self._by_topic.get(seen.topic, ()):
            features[feature.name] = feature.update(features[feature.name], seen)
        return Outcome.APPLIED

    def changes(self, state: CustomerState) -> list[int]:
        """The times at which the stage can change with no new event: cart line expiries, at-risk and lapsed points."""
        config, features = self.config, state.features
        cart, orders = features.get(Cart.name), features.get(Orders.name)
        points = self._cart.expiries(cart) if cart is not None and self._cart is not None else []
        if orders is not None:
            points.extend(order_points(orders.last_ms, config.at_risk_days, config.lapsed_days))
        return points

    def as_of(self, state: CustomerState) -> int:
        """The time the profile is as of: the newest event, or the latest change point the clock has passed.

        The clock (``clock_ms``) is the host's event-time watermark when it last fired the customer's
        timer. Change points are recomputed from the events held, so the result depends only on the
        events and on how far the clock went, not on when the timer fired.
        """
        t, clock = state.as_of_ms, state.clock_ms
        if clock > t:
            for point in self.changes(state):
                if t < point < clock:
                    t = point
        return t

    def next_change(self, state: CustomerState) -> int | None:
        """The first change point after the profile's as-of time: when the host should fire the customer's timer."""
        t = self.as_of(state)
        return min((point for point in self.changes(state) if point > t), default=None)

    def values(self, state: CustomerState) -> dict[str, Any]:
        """The profile's feature values as of :meth:`as_of`, with stage and segments."""
        t = self.as_of(state)
        values: dict[str, Any] = {}
        for feature in self.features:
            values.update(feature.values(state.features[feature.name], t))
        stage, since = journey_stage(values, t, self.config.at_risk_days, self.config.lapsed_days)
        values["stage"] = stage
        values["stage_since_ms"] = since
        values["segments"] = [s.name for s in self.segments if s.matches(values)]
        values["events_total"] = state.events
        values["late_events"] = state.late
        return values
