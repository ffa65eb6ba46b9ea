"""Versioned pydantic contracts for every topic's values: the single source of truth."""

from schemas.base import SCHEMA_VERSION, Event
from schemas.chat import ChatMessage
from schemas.clickstream import ClickstreamEvent
from schemas.consent import ConsentChanged
from schemas.orders import OrderEvent, OrderItem
from schemas.outputs import CustomerFeatures, DeadLetter, Message, Score, Trigger

__all__ = [
    "SCHEMA_VERSION",
    "ChatMessage",
    "ClickstreamEvent",
    "ConsentChanged",
    "CustomerFeatures",
    "DeadLetter",
    "Event",
    "Message",
    "OrderEvent",
    "OrderItem",
    "Score",
    "Trigger",
]
