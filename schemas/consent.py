"""Consent: a customer grants or withdraws permission to be contacted on a channel."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, Text, TimeZoneName
from schemas.personal import FREE_TEXT

ContactChannel = Literal["email", "sms", "push", "in_app"]


class ConsentChanged(Event):
    type: Literal["consent_changed"]
    channel: ContactChannel
    status: Literal["granted", "withdrawn"]
    purpose: Literal["marketing", "service"] = "marketing"
    source: Text | None = Field(None, max_length=256, description="Where the change was made (preference centre, ...).",
                               json_schema_extra=FREE_TEXT)
    time_zone: TimeZoneName | None = None
