"""The ``triggers`` topic record of a fired rule (``schemas.triggers.TriggerEvent``), as JSON bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processors.triggers.ids import trigger_id
from schemas.triggers import TriggerEvent


def iso(t_ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC ending in Z (None stays None)."""
    if t_ms is None:
        return None
    return datetime.fromtimestamp(t_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Fired:
    """A rule's decision that a trigger happened, before it becomes a record."""

    trigger: str
    at_ms: int
    anchor: str
    fired_by: str
    reason: str
    products: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    service: bool = False
    with_history: bool = False


def trigger_record(customer_id: str, fired: Fired, history: dict[str, Any] | None = None) -> TriggerEvent:
    """The contract instance (validated) for ``fired``; its id is derived, so replays agree."""
    return TriggerEvent(
        trigger_id=trigger_id(customer_id, fired.trigger, fired.anchor, fired.at_ms),
        customer_id=customer_id,
        trigger=fired.trigger,  # type: ignore[arg-type]
        fired_at=datetime.fromtimestamp(fired.at_ms / 1000, UTC),
        reason=fired.reason,
        service=fired.service,
        context=fired.context,
        fired_by=fired.fired_by,  # type: ignore[arg-type]
        source_event_id=fired.anchor,
        products=list(fired.products),
        history=history,  # type: ignore[arg-type]
    )


def encode(record: TriggerEvent) -> bytes:
    return record.__pydantic_serializer__.to_json(record)
