"""Service: chat conversations and messages, last and rolling sentiment, unresolved
conversations, and the streak of negative customer messages.

Only the customer's own messages carry sentiment. A conversation is unresolved when its
latest message (by event time, then id) is the customer's and is newer than the
conversation horizon. The negative streak counts the customer's most recent messages,
in event-time order, that are negative, back to the last non-negative one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.features.base import DAY_MS, Observed, day_of
from processors.features.config import FeatureConfig

Scorer = Callable[[str, str | None], float]


@dataclass(slots=True)
class ServiceState:
    messages: int = 0
    customer_messages: int = 0
    conversations: set[str] = field(default_factory=set)
    latest: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # conversation -> (t, id, role)
    sentiment_days: dict[int, list[int]] = field(default_factory=dict)  # day -> [sum in micro-units, count]
    recent: list[tuple[int, str, float]] = field(default_factory=list)  # sorted customer messages (t, id, score)
    closed_streak: int = 0  # negative streak of the messages folded out of ``recent``


class Service:
    name: ClassVar[str] = "service"
    topics: ClassVar[frozenset[str]] = frozenset({"chat"})

    def __init__(self, config: FeatureConfig, scorer: Scorer, negative_below: float) -> None:
        self.scorer = scorer
        self.negative_below = negative_below
        self.window = config.sentiment_window_days
        self.horizon_ms = config.conversation_horizon_days * DAY_MS
        self.lateness = config.allowed_lateness_ms

    def init(self) -> ServiceState:
        return ServiceState()

    def update(self, state: ServiceState, seen: Observed) -> ServiceState:
        e, t = seen.event, seen.t_ms
        state.messages += 1
        state.conversations.add(e.conversation_id)
        mark = (t, seen.event_id, e.sender_role)
        previous = state.latest.get(e.conversation_id)
        if previous is None or mark[:2] > previous[:2]:
            state.latest[e.conversation_id] = mark
        if e.sender_role == "customer":
            state.customer_messages += 1
            score = self.scorer(e.text, e.language)
            bucket = state.sentiment_days.setdefault(day_of(t), [0, 0])
            bucket[0] += round(score * 1_000_000)  # integers: the sum is exact in any order
            bucket[1] += 1
            bisect.insort(state.recent, (t, seen.event_id, score))
            self._fold(state)
        if len(state.latest) > 64:
            newest = max(m[0] for m in state.latest.values())
            state.latest = {c: m for c, m in state.latest.items() if m[0] > newest - self.horizon_ms - self.lateness}
        if len(state.sentiment_days) > self.window + 30:
            newest_day = max(state.sentiment_days)
            state.sentiment_days = {d: b for d, b in state.sentiment_days.items() if d > newest_day - self.window - 30}
        return state

    def _fold(self, state: ServiceState) -> None:
        # Messages older than newest - lateness can no longer be preceded by a new one: fold them.
        horizon = state.recent[-1][0] - self.lateness
        while len(state.recent) > 16 and state.recent[0][0] < horizon:
            _, _, score = state.recent.pop(0)
            if score < self.negative_below:
                state.closed_streak += 1
            else:
                state.closed_streak = 0

    def values(self, state: ServiceState, as_of_ms: int) -> dict[str, Any]:
        today = day_of(as_of_ms)
        total = count = 0
        for day, (s, n) in sorted(state.sentiment_days.items()):
            if today - self.window < day <= today:
                total += s
                count += n
        streak = state.closed_streak
        for _, _, score in state.recent:
            streak = streak + 1 if score < self.negative_below else 0
        unresolved = sum(1 for t, _, role in state.latest.values()
                         if role == "customer" and t > as_of_ms - self.horizon_ms)
        return {
            "chat_messages": state.messages,
            "chat_customer_messages": state.customer_messages,
            "conversations": len(state.conversations),
            "unresolved_conversations": unresolved,
            "last_sentiment": state.recent[-1][2] if state.recent else None,
            f"sentiment_{self.window}d": total / count / 1_000_000 if count else None,
            "negative_streak": streak,
        }
