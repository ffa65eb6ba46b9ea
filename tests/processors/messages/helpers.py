"""Building triggers and running the message processor over records, for the message tests."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import orjson

from processors.messages.config import Holdout, MessagesConfig
from processors.messages.processor import MessagesProcessor
from processors.messages.state import MessageState
from schemas.registry import MESSAGE_DECISIONS as DECISIONS_TOPIC
from schemas.registry import MESSAGES as MESSAGES_TOPIC
from tests.processors.triggers.helpers import Record, event, iso

_ids = itertools.count()

#: The shipped parameters without the holdout, so a guard test is never silently held out.
NO_HOLDOUT = dataclasses.replace(MessagesConfig(), holdout=Holdout(share=0.0))


def trigger(kind: str, t_ms: int, customer: str = "c1", service: bool = False, products: tuple[str, ...] = (),
            context: dict[str, Any] | None = None, trigger_id: str | None = None,
            history: dict[str, Any] | None = None) -> Record:
    """A ``triggers`` record as the trigger processor writes it."""
    body: dict[str, Any] = {"trigger_id": trigger_id or f"trg-{next(_ids)}", "customer_id": customer, "trigger": kind,
                            "fired_at": iso(t_ms), "reason": "test", "service": service,
                            "context": context or {}, "products": list(products)}
    if history is not None:
        body["history"] = history
    return "triggers", customer.encode(), orjson.dumps(body), t_ms


def consent(channel: str, status: str, t_ms: int, customer: str = "c1", purpose: str = "marketing") -> Record:
    return event("consent_changed", t_ms, customer, channel=channel, status=status, purpose=purpose)


class Run:
    """One processor and its customer states; ``feed`` returns decisions and messages as dicts."""

    def __init__(self, config: MessagesConfig = NO_HOLDOUT, processor: MessagesProcessor | None = None) -> None:
        self.processor = processor or MessagesProcessor(config)
        self.states: dict[str, MessageState] = {}

    def state(self, customer: str = "c1") -> MessageState:
        if customer not in self.states:
            self.states[customer] = self.processor.new_state(customer)
        return self.states[customer]

    def feed(self, *records: Record) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for topic, key, value, _ in records:
            out += self.processor.process(self.state(key.decode()), topic, value, key)
        return [(t, orjson.loads(v)) for t, _, v in out]

    def due(self, now_ms: int, customer: str = "c1") -> list[tuple[str, dict[str, Any]]]:
        return [(t, orjson.loads(v)) for t, _, v in self.processor.due(self.state(customer), now_ms)]


def decisions(out: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str | None]]:
    """(guard, outcome, channel) of each decision, in order."""
    return [(d["guard"], d["outcome"], d["channel"]) for t, d in out if t == DECISIONS_TOPIC]


def messages(out: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [m for t, m in out if t == MESSAGES_TOPIC]


def pipeline(records: list[Record], triggers: Any = None, messages: MessagesProcessor | None = None
             ) -> tuple[list[tuple[str, bytes | None, bytes]], list[tuple[str, bytes | None, bytes]]]:
    """An in-process run of the trigger then the message processor over time-ordered input records.

    Triggers replay on the event-time watermark; the messages replay sees the inputs and the
    triggers merged by event time (a trigger at its ``fired_at``). Returns both outputs.
    """
    from processors.triggers.processor import TriggersProcessor
    from streams.replay_host import Replay

    fired = Replay(triggers or TriggersProcessor())
    fired.feed(records)
    timed = [(t, k or b"", v, _fired_ms(v)) for t, k, v in fired.outputs]
    made = Replay(messages or MessagesProcessor())
    made.feed(sorted([*records, *timed], key=lambda r: r[3]))
    return fired.outputs, made.outputs


def _fired_ms(value: bytes) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(orjson.loads(value)["fired_at"]).timestamp() * 1000)
