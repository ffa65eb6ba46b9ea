"""Acquisition channel: the channel and UTM source of the customer's first touch.

The first touch is the earliest event (by event time, then event id) that carries a
channel: a clickstream event or, for customers with no clickstream, a placed order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from processors.features.base import Observed
from processors.features.config import FeatureConfig


@dataclass(slots=True)
class TouchState:
    first: tuple[int, str, str | None, str | None] | None = None  # t, event id, channel, utm source


class Acquisition:
    name: ClassVar[str] = "acquisition"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config

    def init(self) -> TouchState:
        return TouchState()

    def update(self, state: TouchState, seen: Observed) -> TouchState:
        if seen.topic == "orders" and seen.type != "order_placed":
            return state
        e = seen.event
        touch = (seen.t_ms, seen.event_id, e.channel, getattr(e, "utm_source", None))
        if state.first is None or touch[:2] < state.first[:2]:
            state.first = touch
        return state

    def values(self, state: TouchState, as_of_ms: int) -> dict[str, Any]:
        if state.first is None:
            return {"acquisition_channel": None, "acquisition_source": None}
        return {"acquisition_channel": state.first[2], "acquisition_source": state.first[3]}
