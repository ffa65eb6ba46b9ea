"""The envelope every input event shares: ids, customer, event time, schema version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from schemas.personal import PSEUDONYMOUS

#: The schema version this code writes and the highest it accepts.
SCHEMA_VERSION = 1

#: Identifiers: non-empty, bounded, no surrounding whitespace, no line break.
IDENTIFIER_PATTERN = r"^\S(.*\S)?$"
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)]


def _to_utc(value: datetime) -> datetime:
    # Most events already say UTC: only convert those that do not (astimezone allocates).
    return value.astimezone(UTC) if value.utcoffset() else value


#: An IANA time zone name as a device or preference centre reports it (Europe/Lisbon, America/Sao_Paulo).
#: Checked by shape only: an unknown name is kept, and readers fall back to their default zone.
TimeZoneName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$", max_length=64,
                                    description="The customer's IANA time zone (e.g. Europe/Lisbon); quiet hours "
                                                "are kept in it.")]

#: A timezone-aware instant, normalised to UTC. Naive timestamps are refused:
#: an event whose zone is unknown cannot be placed on the timeline.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Contract(BaseModel):
    """Base for every topic value: strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=20_000)


class Event(Contract):
    """Fields every input event carries (clickstream, orders, chat, consent)."""

    event_id: Identifier = Field(description="Unique id; a replayed row's id is derived from its content.")
    customer_id: Identifier = Field(description="The customer (or pseudonymous visitor) the event belongs to; never "
                                               "an email or phone (the edge sends their HMAC).",
                                   json_schema_extra=PSEUDONYMOUS)
    event_time: UtcDatetime = Field(description="When it happened, ISO 8601 with a zone; stored in UTC.")
    schema_version: int = Field(SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
