"""Contracts of what the pipeline emits: features, scores, triggers, messages.

These are the topics automation and other teams code against. Fields are added in
a backward-compatible way (optional, with defaults); anything else bumps
``schema_version``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from schemas.base import SCHEMA_VERSION, Contract, Identifier, UtcDatetime
from schemas.consent import ContactChannel


class CustomerFeatures(Contract):
    """The latest profile of one customer (compacted topic ``customer-features``)."""

    customer_id: Identifier
    as_of: UtcDatetime = Field(description="Event time the profile is as of: its newest event, or the latest time "
                                           "a stage can change with no event that the clock has passed.")
    schema_version: int = SCHEMA_VERSION
    events_total: int = Field(0, ge=0)
    last_seen: UtcDatetime | None = None
    stage: str | None = Field(None, description="Journey stage (see processors/features/stage.py).")
    stage_since: UtcDatetime | None = None
    segments: list[str] = Field(default_factory=list)
    features: dict[str, bool | int | float | str | None] = Field(
        default_factory=dict, description="Named feature values; see processors/features/README.md."
    )
    merged_into: Identifier | None = Field(None, description="Set when this profile (an anonymous visitor, an "
                                                             "aliased customer) was merged into another customer's: "
                                                             "it is retired and takes no more events.")


class Score(Contract):
    """A model's probability for one customer (topic ``scores``)."""

    score_id: Identifier
    customer_id: Identifier
    model: Literal["purchase_propensity", "churn"]
    model_version: int = Field(ge=0)
    scored_at: UtcDatetime
    probability: float = Field(ge=0, le=1)
    band: Literal["low", "medium", "high"]
    cold_start: bool = False
    top_features: dict[str, float] = Field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


TriggerType = Literal[
    "cart_abandoned",
    "browse_abandoned",
    "checkout_abandoned",
    "high_intent",
    "churn_risk",
    "unhappy_customer",
    "review_request",
    "welcome",
    "win_back",
]


class Trigger(Contract):
    """Something automation should react to (topic ``triggers``)."""

    trigger_id: Identifier
    customer_id: Identifier
    trigger: TriggerType
    fired_at: UtcDatetime = Field(description="Event time at which the rule fired.")
    reason: str = Field(max_length=1024, description="Human-readable why.")
    service: bool = Field(False, description="A service message (exempt from marketing consent).")
    context: dict[str, float | int | str | None] = Field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


class Message(Contract):
    """A personalised message ready for a delivery adapter (topic ``messages``)."""

    message_id: Identifier
    trigger_id: Identifier
    customer_id: Identifier
    channel: ContactChannel
    template: str
    locale: str = "en"
    subject: str | None = None
    body: str
    send_at: UtcDatetime
    recommendations: list[str] = Field(default_factory=list)
    schema_version: int = SCHEMA_VERSION


class DeadLetter(Contract):
    """An input that could not be accepted, with why and the original bytes (topic ``dead-letters``)."""

    # No string length cap here: ``schemas.validation.dead_letter`` bounds the original (MAX_ORIGINAL_BYTES).
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=None)

    dead_letter_id: Identifier = Field(description="Derived from the source topic and the original bytes.")
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    reason: str = Field(description="Machine-readable reason code, e.g. malformed_json, invalid_field.")
    detail: str = Field(max_length=4096, description="What exactly was wrong.")
    key: str | None = Field(None, description="The record key, base64 (its first bytes only when ``truncated``).")
    original: str = Field(description="The original value bytes, base64: whole, or its first bytes when "
                                      "``truncated`` (a dead letter must fit in a Kafka record).")
    received_at: UtcDatetime
    original_length: int | None = Field(None, ge=0, description="Length in bytes of the value as received "
                                                               "(None in letters written before the field).")
    original_sha256: str | None = Field(None, description="SHA-256 (hex) of the value as received, so a "
                                                          "truncated original can still be matched to its record.")
    truncated: bool = Field(False, description="Whether ``original`` or ``key`` holds only the first bytes.")
    schema_version: int = SCHEMA_VERSION


class LateEvent(Contract):
    """A valid event that arrived after the allowed lateness (topic ``late-events``): not in any window."""

    # No length cap: the original must be kept whole.
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=None)

    event_id: Identifier
    customer_id: Identifier
    source_topic: str
    event_time: UtcDatetime
    newest_event_time: UtcDatetime = Field(description="The newest event of the same topic for this customer (of "
                                                       "the same topic and origin for an event the identity stage "
                                                       "re-keyed: its resolved_from).")
    allowed_lateness_s: float
    reason: Literal["late"] = "late"
    processor: str
    original: str | None = Field(None, description="The original value bytes, base64 (None in records written "
                                                   "before the field existed).")
    schema_version: int = SCHEMA_VERSION
