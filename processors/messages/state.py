"""One customer's message state: consent, sends, habits, locale and zone, recent items, held messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processors.messages.consent import ConsentBook
from processors.messages.frequency import Sent
from processors.messages.recommend import Interaction


@dataclass(slots=True)
class Held:
    """A message deferred by quiet hours, released by ``due`` at ``send_ms`` unless consent or a goal stops it."""

    send_ms: int
    fired_ms: int
    trigger: str
    trigger_id: str
    channel: str
    message_id: str
    service: bool
    record: bytes  # the message, JSON, ready to produce
    previous_messaged_ms: int | None = None  # the cooldown mark before this message: restored if it never goes out


@dataclass(slots=True)
class MessageState:
    customer_id: str
    clock_ms: int = 0  # newest event time seen (any topic)
    consent: ConsentBook = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    last_messaged: dict[str, int] = field(default_factory=dict)  # trigger -> fired_at of the last message
    habits: dict[str, int] = field(default_factory=dict)  # platform counts of events older than habit_events
    habit_events: list[tuple[int, bool]] = field(default_factory=list)  # newest clickstream (time, app?), bounded
    locale: tuple[int, str] | None = None  # (event time, language) of the newest language hint
    time_zone: tuple[int, str] | None = None  # (event time, IANA zone) of the newest zone hint
    hints: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # "locale"/"time_zone" -> recent, timed
    profile: dict[str, Any] = field(default_factory=dict)
    profile_as_of_ms: int = -1
    recent: list[Interaction] = field(default_factory=list)
    bought: list[str] = field(default_factory=list)  # latest bought items, newest last (bounded)
    held: list[Held] = field(default_factory=list)
    seen_triggers: dict[str, int] = field(default_factory=dict)  # trigger id -> fired_at (bounded): redeliveries
