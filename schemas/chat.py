"""Chat: customer, agent and bot messages from live chat, email, social and reviews."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, Identifier, StrictInt, Text
from schemas.personal import FREE_TEXT


class ChatMessage(Event):
    type: Literal["chat_message"]
    conversation_id: Identifier
    sender_role: Literal["customer", "agent", "bot"]
    channel: Literal["live_chat", "email", "social", "review"]
    text: Text = Field(max_length=10_000, description="Emails, phones, IP addresses, card numbers, CPFs and "
                                                        "CNPJs redacted at the edge.",
                      json_schema_extra=FREE_TEXT)
    language: str | None = Field(None, pattern=r"^[a-z]{2}$", description="ISO 639-1 code when known.")
    rating: StrictInt | None = Field(None, ge=1, le=5,
                                     description="A review's star rating, when the message is a review.")
    in_reply_to: Identifier | None = Field(None, description="event_id of the message this one answers.")
