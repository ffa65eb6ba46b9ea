"""Unhappy customer: a service escalation carrying the customer's whole history.

Fires on a customer's chat message that scores below ``sentiment_below``, or that makes
a streak of ``negative_streak`` consecutive negative messages (below ``negative_below``),
at most once per conversation. The trigger is a service trigger (exempt from marketing
consent) and carries the history summary (latest orders, open issues, sentiment trend,
value) so an agent sees the whole customer at once. The message text is never copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from processors.features.base import Observed
from processors.triggers.history import negative_streak
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec
from processors.triggers.state import TriggerState

MAX_ESCALATED = 64


@dataclass(frozen=True)
class UnhappyCustomer:
    """The ``[unhappy_customer]`` section of ``rules.toml``."""

    enabled: bool = True
    sentiment_below: float = -0.5
    negative_streak: int = 2
    negative_below: float = -0.05
    history_orders: int = 5
    sentiment_trend: int = 10


@dataclass(slots=True)
class UnhappyRuleState:
    escalated: dict[str, int] = field(default_factory=dict)  # conversation -> time escalated


class UnhappyCustomerRule(RuleBase):
    name = "unhappy_customer"
    topics: ClassVar[frozenset[str]] = frozenset({"chat"})

    def __init__(self, config: UnhappyCustomer) -> None:
        self.enabled = config.enabled
        self.config = config

    def init(self) -> UnhappyRuleState:
        return UnhappyRuleState()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        e = seen.event
        if e.sender_role != "customer":
            return []
        own: UnhappyRuleState = state.rules[self.name]
        if e.conversation_id in own.escalated:
            return []
        score = next((s for t, i, s, _ in state.history.sentiments if i == seen.event_id), None)
        if score is None:
            return []
        streak = negative_streak(state.history, (seen.t_ms, seen.event_id), self.config.negative_below)
        if score < self.config.sentiment_below:
            reason = f"a customer message scored {score:.2f} (below {self.config.sentiment_below})"
        elif streak >= self.config.negative_streak:
            reason = f"{streak} negative customer messages in a row"
        else:
            return []
        own.escalated[e.conversation_id] = seen.t_ms
        if len(own.escalated) > MAX_ESCALATED:
            own.escalated = dict(sorted(own.escalated.items(), key=lambda kv: kv[1])[-MAX_ESCALATED:])
        context = {"conversation_id": e.conversation_id, "chat_channel": e.channel,
                   "sentiment": round(score, 4), "negative_streak": streak, "language": e.language}
        return [Fired(self.name, seen.t_ms, seen.event_id, "event", reason, (), context,
                      service=True, with_history=True)]


SPECS = (RuleSpec("unhappy_customer", UnhappyCustomer(), lambda section, config: UnhappyCustomerRule(section)),)
