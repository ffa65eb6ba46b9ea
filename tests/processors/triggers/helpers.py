"""Building input records for the trigger and message processors, and running them in process."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from processors.triggers.processor import TriggersProcessor
from schemas.registry import TOPIC_OF_TYPE
from streams.replay_host import Replay

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
_ids = itertools.count()

Record = tuple[str, bytes, bytes, int]


def ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def at(minutes: float = 0, *, days: float = 0) -> int:
    """Epoch ms of T0 plus an offset."""
    return ms(T0 + timedelta(minutes=minutes, days=days))


def iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def event(kind: str, t_ms: int, customer: str = "c1", event_id: str | None = None, **fields: Any) -> Record:
    """An input event record of type ``kind`` at ``t_ms`` with sensible required fields."""
    body: dict[str, Any] = {"type": kind, "event_id": event_id or f"e{next(_ids)}", "customer_id": customer,
                            "event_time": iso(t_ms)}
    if kind in ("product_view", "add_to_cart", "remove_from_cart", "add_to_wishlist"):
        body.setdefault("product_id", "p1")
    if kind.startswith("order_"):
        body.setdefault("order_id", "o1")
    if kind == "chat_message":
        body.update(conversation_id="k1", sender_role="customer", channel="live_chat", text="ok")
    if kind == "consent_changed":
        body.update(channel="email", status="granted")
    body.update(fields)
    return TOPIC_OF_TYPE[kind], customer.encode(), orjson.dumps(body), t_ms


def score(model: str, band: str, t_ms: int, customer: str = "c1", probability: float = 0.9,
          cold_start: bool = False, score_id: str | None = None) -> Record:
    body = {"score_id": score_id or f"s{next(_ids)}", "customer_id": customer, "model": model, "model_version": 1,
            "scored_at": iso(t_ms), "probability": probability, "band": band, "cold_start": cold_start}
    return "scores", customer.encode(), orjson.dumps(body), t_ms


def profile(t_ms: int, customer: str = "c1", stage: str = "browser", segments: tuple[str, ...] = (),
            **features: Any) -> Record:
    body = {"customer_id": customer, "as_of": iso(t_ms), "events_total": 1, "stage": stage,
            "segments": list(segments), "features": features}
    return "customer-features", customer.encode(), orjson.dumps(body), t_ms


def run(records: list[Record], until_ms: int | None = None, processor: TriggersProcessor | None = None,
        grace_ms: int = 0) -> list[dict[str, Any]]:
    """Triggers (as dicts) of replaying ``records`` in the order given, with every timer due by ``until_ms``."""
    replay = Replay(processor or TriggersProcessor(), grace_ms=grace_ms)
    replay.feed(records)
    if until_ms is not None:
        replay.advance(until_ms)
    return [orjson.loads(value) for _, _, value in replay.outputs]


def of(triggers: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [t for t in triggers if t["trigger"] == kind]
