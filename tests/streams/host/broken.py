"""Processors that break the contract on purpose, each in one way, so ``check_processor`` can be seen to fail."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

Output = tuple[str, bytes | None, bytes | None]


@dataclass
class Seen:
    customer_id: str
    records: int = 0


class HiddenCounter:
    """Counts each customer's orders in the processor, not the state: a restart forgets them."""

    name = "hidden-counter"

    def __init__(self) -> None:
        self.orders: dict[str, int] = {}

    def new_state(self, key: str) -> Seen:
        return Seen(key)

    def process(self, state: Seen, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        state.records += 1
        if topic != "orders":
            return []
        self.orders[state.customer_id] = self.orders.get(state.customer_id, 0) + 1
        return [("order-counts", key, str(self.orders[state.customer_id]).encode())]

    def emit(self, key: str, state: Seen) -> list[Output]:
        return []


class LeakyEraser(HiddenCounter):
    """Keeps the counts in the state (crash-safe) but remembers every customer it saw in the processor."""

    name = "leaky-eraser"

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def process(self, state: Seen, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        self.seen.add(state.customer_id)
        state.records += 1
        return []


@dataclass
class Locked:
    customer_id: str
    lock: Any = field(default_factory=threading.Lock)


class Unpicklable(HiddenCounter):
    """A state holding a lock: it cannot be written to the changelog."""

    name = "unpicklable"

    def new_state(self, key: str) -> Locked:  # type: ignore[override]
        return Locked(key)

    def process(self, state: Any, topic: str, value: bytes | None, key: bytes | None) -> list[Output]:
        return []


def hidden_counter() -> HiddenCounter:
    return HiddenCounter()


def leaky_eraser() -> LeakyEraser:
    return LeakyEraser()


def unpicklable() -> Unpicklable:
    return Unpicklable()
