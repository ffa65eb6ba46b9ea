"""Folding one customer's feature state into another's (identity resolution: an anonymous visitor or an
aliased customer turns out to be the same person as the canonical customer).

Exact merges (the merged state equals the state the union of both event streams would have made,
within the allowed lateness and before any bucket was pruned): the envelope (event count, late count,
newest event time per stream, recent event ids, as-of time), ``activity`` (lifetime and windowed counts
per type, active days, first and last seen), ``orders`` (counts, revenue, windows, first/last order,
cancellations, refunds, deliveries) and ``acquisition`` (the earliest touch). Not merged: ``sessions``,
``cart``, ``preferences`` and ``service`` keep the canonical customer's own state (their sequences
would need the events themselves: see the README's identity section).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processors.event_time import is_origin_stream, stream_of
from processors.features.acquisition import TouchState
from processors.features.activity import ActivityState
from processors.features.engine import CustomerState
from processors.features.orders import OrdersState


def _low(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _high(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _add(into: dict[Any, int], other: dict[Any, int]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0) + n


def merge_activity(into: ActivityState, other: ActivityState) -> ActivityState:
    _add(into.lifetime, other.lifetime)
    _add(into.minutes, other.minutes)
    _add(into.hours, other.hours)
    into.days |= other.days
    into.first_seen_ms = _low(into.first_seen_ms, other.first_seen_ms)
    into.last_seen_ms = _high(into.last_seen_ms, other.last_seen_ms)
    into.prune_at = max(into.prune_at, len(into.minutes) + len(into.hours))
    return into


def merge_orders(into: OrdersState, other: OrdersState) -> OrdersState:
    into.orders += other.orders
    into.revenue_cents += other.revenue_cents
    into.priced_orders += other.priced_orders
    into.first_ms = _low(into.first_ms, other.first_ms)
    into.last_ms = _high(into.last_ms, other.last_ms)
    for day, (orders, cents) in other.days.items():
        bucket = into.days.setdefault(day, [0, 0])
        bucket[0] += orders
        bucket[1] += cents
    into.cancelled += other.cancelled
    into.refunds += other.refunds
    into.refunded_cents += other.refunded_cents
    into.delivered += other.delivered
    into.last_delivered_ms = _high(into.last_delivered_ms, other.last_delivered_ms)
    return into


def merge_acquisition(into: TouchState, other: TouchState) -> TouchState:
    if other.first is not None and (into.first is None or other.first[:2] < into.first[:2]):
        into.first = other.first
    return into


#: Feature name -> how its states merge exactly. Features not listed keep the canonical customer's state.
MERGES: dict[str, Callable[[Any, Any], Any]] = {
    "activity": merge_activity, "orders": merge_orders, "acquisition": merge_acquisition}


def merge_states(into: CustomerState, other: CustomerState) -> list[str]:
    """Fold ``other`` into ``into`` (mutated); return the names of the features merged exactly.

    Event ids ``into`` has already applied stay counted once: ``other``'s recent ids are added, so a
    later copy of one of its events is a duplicate for ``into`` too. ``other``'s streams keep their
    origin: its own topics become streams of origin ``other`` (where its later events, re-keyed or
    forwarded, are checked), the ones it had from others stay theirs; ``into``'s own streams do not
    move (its newest time is no bound for events of another origin).
    """
    streams = {stream: stream if is_origin_stream(stream) else stream_of(stream, other.customer_id)
               for stream in other.newest.keys() | {stream for _, stream in other.recent_ids.values()}}
    for stream, t in other.newest.items():
        moved = streams[stream]
        if t > into.newest.get(moved, t - 1):
            into.newest[moved] = t
    into.recent_ids.update({event_id: (t, streams[stream]) for event_id, (t, stream) in other.recent_ids.items()})
    into.as_of_ms = max(into.as_of_ms, other.as_of_ms)
    into.clock_ms = max(into.clock_ms, other.clock_ms)
    into.events += other.events
    into.late += other.late
    merged = []
    for name, merge in MERGES.items():
        if name in into.features and name in other.features:
            into.features[name] = merge(into.features[name], other.features[name])
            merged.append(name)
    return merged
