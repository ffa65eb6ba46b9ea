"""An in-process host for a stateful processor with timers: records in event-time order, outputs out.

It does what a Kafka host does, without Kafka: one state per key, ``process`` per record,
and the event-time watermark (newest event time seen minus ``grace_ms``) firing every
timer that is due before each record, then all timers up to ``until_ms`` at the end.
Tests, backfills and benchmarks use it; the Kafka host keeps the same order of calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from processors.output import Output
from streams.timer_queue import TimerQueue


class TimedProcessor(Protocol):
    """The part of the host contract (streams/host/contract.py) a replay calls; restated here because the
    domain imports no host. streams/host/testing.py's ``Harness`` is the replay with crashes, flushes and
    every hook."""

    def new_state(self, key: str) -> Any: ...
    def process(self, state: Any, topic: str, value: bytes | None, key: bytes | None) -> list[Output]: ...
    def due(self, state: Any, now_ms: int) -> list[Output]: ...
    def next_timer(self, state: Any) -> int | None: ...


@dataclass
class Replay:
    """Replays records through ``processor``; ``states`` and ``outputs`` are kept for inspection."""

    processor: TimedProcessor
    grace_ms: int = 0
    states: dict[str, Any] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    watermark_ms: int | None = None
    queue: TimerQueue = field(default_factory=TimerQueue)

    def feed(self, records: Iterable[tuple[str, bytes, bytes, int]]) -> list[Output]:
        """Apply (topic, key, value, event time ms) records; return the outputs they caused."""
        start = len(self.outputs)
        for topic, key, value, t_ms in records:
            self.advance(t_ms - self.grace_ms)
            name = key.decode()
            state = self.states.get(name)
            if state is None:
                state = self.states[name] = self.processor.new_state(name)
            self.outputs.extend(self.processor.process(state, topic, value, key))
            self.queue.set(name, self.processor.next_timer(state))
        return self.outputs[start:]

    def advance(self, watermark_ms: int) -> list[Output]:
        """Move the clock to ``watermark_ms`` (never back) and fire every timer due before it."""
        if self.watermark_ms is not None and watermark_ms <= self.watermark_ms:
            return []
        self.watermark_ms = watermark_ms
        start = len(self.outputs)
        for name in self.queue.pop_due(watermark_ms):
            state = self.states[name]
            self.outputs.extend(self.processor.due(state, watermark_ms))
            self.queue.set(name, self.processor.next_timer(state))
        return self.outputs[start:]
