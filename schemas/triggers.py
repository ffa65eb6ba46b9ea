"""Contracts of the trigger and message stages, extending ``schemas.outputs`` compatibly.

``TriggerEvent`` and ``MessageRecord`` add optional fields (with defaults) to the v1
``Trigger`` and ``Message`` contracts, so a record written by the old models still
validates. ``GuardDecision`` is new: one record per guard evaluated before a message is
made (topic ``message-decisions``), so every suppression, deferral and exemption can be
counted and audited. Nothing here carries free text a customer wrote.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Contract, Identifier, UtcDatetime
from schemas.consent import ContactChannel
from schemas.outputs import Message, Trigger, TriggerType

OrderStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]


class OrderSummary(Contract):
    """One of the customer's latest orders, as an agent needs to see it."""

    order_id: Identifier
    placed_at: UtcDatetime | None = None
    status: OrderStatus
    status_at: UtcDatetime
    amount: float | None = Field(None, ge=0)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    items: int = Field(0, ge=0)


class CustomerHistory(Contract):
    """The whole customer at once, for a service escalation (``unhappy_customer``)."""

    last_orders: list[OrderSummary] = Field(default_factory=list, max_length=20,
                                            description="Newest first.")
    open_issues: int = Field(0, ge=0, description="Conversations whose newest message is the customer's.")
    open_conversations: list[Identifier] = Field(default_factory=list, max_length=20)
    sentiment_trend: list[float] = Field(default_factory=list, max_length=50,
                                         description="Scores (-1..1) of the customer's latest messages, oldest first.")
    sentiment_7d: float | None = Field(None, description="Mean sentiment over 7 days, from the profile.")
    negative_streak: int = Field(0, ge=0)
    orders_total: int = Field(0, ge=0)
    revenue_total: float | None = Field(None, ge=0, description="Known revenue (orders without an amount add none).")
    average_order_value: float | None = Field(None, ge=0)
    refunds: int = Field(0, ge=0)
    cancellations: int = Field(0, ge=0)
    stage: str | None = None
    segments: list[str] = Field(default_factory=list)


class TriggerEvent(Trigger):
    """A trigger (topic ``triggers``), with what caused it and what a message needs."""

    fired_by: Literal["event", "timer", "score"] = Field(
        "event", description="An input event, an absence timer (event time or wall clock), or a score crossing.")
    source_event_id: Identifier | None = Field(
        None, description="The event (or score) the rule anchored on; with the rule, it derives trigger_id.")
    products: list[Identifier] = Field(default_factory=list, max_length=100,
                                       description="Products involved (cart lines, viewed products, order items).")
    history: CustomerHistory | None = Field(None, description="Set on service escalations (unhappy_customer).")


GuardName = Literal["holdout", "cooldown", "consent", "frequency_cap", "quiet_hours", "goal", "channel", "privacy"]
GuardOutcome = Literal["passed", "blocked", "deferred", "exempt", "held_out", "cancelled"]


class GuardDecision(Contract):
    """One guard's outcome for one trigger (topic ``message-decisions``)."""

    decision_id: Identifier = Field(description="Derived from trigger, guard and channel: a replay writes the same.")
    trigger_id: Identifier
    customer_id: Identifier
    trigger: TriggerType
    guard: GuardName
    outcome: GuardOutcome
    channel: ContactChannel | None = Field(None, description="The channel the guard judged, when per channel.")
    decided_at: UtcDatetime = Field(description="Event time of the decision (the trigger's, or a timer's).")
    deferred_until: UtcDatetime | None = None
    detail: str = Field("", max_length=512, description="Machine-friendly why, e.g. 'cap 2 per 1d reached'.")
    message_id: Identifier | None = None
    schema_version: int = SCHEMA_VERSION


class MessageRecord(Message):
    """A message (topic ``messages``), saying which trigger made it and whether it is a service message."""

    trigger: TriggerType | None = None
    service: bool = Field(False, description="A service message: exempt from marketing consent and caps.")
    title: str | None = Field(None, max_length=256, description="Push and in-app title.")
    deferred: bool = Field(False, description="Held back by quiet hours; send_at is the end of the quiet period.")


DeliveryStatus = Literal["delivered", "retrying", "dead_lettered", "stale"]


class Delivery(Contract):
    """What a delivery adapter did with one message (topic ``deliveries``)."""

    delivery_id: Identifier = Field(description="Derived from the message and the adapter: redelivery writes the same.")
    message_id: Identifier
    trigger_id: Identifier
    customer_id: Identifier
    trigger: TriggerType | None = None
    channel: ContactChannel
    adapter: Literal["webhook", "smtp", "console"]
    status: DeliveryStatus = Field(description="retrying: parked for a later attempt (a newer record follows); "
                                   "dead_lettered: failed for good or past the retry window; stale: too old to "
                                   "send when it came up; detail says why.")
    attempts: int = Field(ge=1)
    delivered_at: UtcDatetime = Field(description="Wall-clock time of the last attempt.")
    detail: str = Field("", max_length=1024, description="The last error (never a secret or the message body).")
    schema_version: int = SCHEMA_VERSION
