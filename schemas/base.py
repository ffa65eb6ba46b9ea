"""The envelope every input event shares: ids, customer, event time, schema version."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.personal import PSEUDONYMOUS

#: The schema version this code writes and the highest it accepts.
SCHEMA_VERSION = 1

#: Identifiers: non-empty, bounded, no surrounding whitespace, no line break, no control character
#: (C0, DEL, C1: an ANSI escape in an id would reach terminals and dashboards).
IDENTIFIER_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)]

#: Text (free text, URLs, campaign names): any character but the controls (C0, DEL, C1) other than
#: tab and line breaks: an ANSI escape would reach terminals (``journey report``) and dashboards.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
Text = Annotated[str, Field(pattern=TEXT_PATTERN)]

#: Numbers on the wire are JSON numbers: strict types refuse ``"3"``, ``"12.5"`` and ``true`` (pydantic
#: would coerce them, and a bool would be stored as 1). A float field still takes a JSON integer (``12``).
StrictInt = Annotated[int, Strict()]
StrictFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]


_ISO_DATE = re.compile(r"\d{4}-")


def _iso_only(value: Any) -> Any:
    """Refuse what pydantic would read as unix seconds (``1714557600``, ``"1714557600"``): not ISO 8601."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise PydanticCustomError("invalid_timestamp", "must be an ISO 8601 date and time with a zone")


def _to_utc(value: datetime) -> datetime:
    # Most events already say UTC: only convert those that do not (astimezone allocates).
    if not value.utcoffset():
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise PydanticCustomError("event_time_out_of_range", "is outside the years datetimes can hold") from None


#: An IANA time zone name as a device or preference centre reports it (Europe/Lisbon, America/Sao_Paulo).
#: Checked by shape only: an unknown name is kept, and readers fall back to their default zone.
TimeZoneName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$", max_length=64,
                                    description="The customer's IANA time zone (e.g. Europe/Lisbon); quiet hours "
                                                "are kept in it.")]

#: A timezone-aware instant, normalised to UTC. Naive timestamps are refused:
#: an event whose zone is unknown cannot be placed on the timeline.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_to_utc)]


class Contract(BaseModel):
    """Base for every topic value: strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=20_000)


#: Event types that link identities (schemas/clickstream.py): they need a known ``customer_id``.
LINKING_TYPES = frozenset({"identify", "alias"})

#: The optional identifiers an event may carry besides ``customer_id``/``anonymous_id`` (identity
#: resolution links on them, processors/identity/). Email and phone travel as the edge's keyed pseudonym.
EXTRA_IDENTIFIERS = ("device_id", "email_hash", "phone_hash", "chat_handle", "loyalty_id")


class Event(Contract):
    """Fields every input event carries (clickstream, orders, chat, consent).

    An event names its subject by ``customer_id`` (a known customer), ``anonymous_id`` (a cookie or app
    install not yet linked to a customer), or both; one of the two is required (a record with neither is
    dead-lettered as ``missing_identity``). An event with only ``anonymous_id`` is read with ``customer_id``
    equal to it: every processor keys by ``customer_id``, and the identity stage (streams/identity.py)
    treats an event whose ``customer_id`` equals its ``anonymous_id`` as anonymous.
    """

    model_config = ConfigDict(**Contract.model_config, json_schema_extra={
        "anyOf": [{"required": ["customer_id"]}, {"required": ["anonymous_id"]}]})

    event_id: Identifier = Field(description="Unique id; a replayed row's id is derived from its content.")
    customer_id: Identifier = Field(None, description="The customer (or pseudonymous visitor) the event belongs to; "
                                                     "never an email or phone (the edge sends their HMAC). When "
                                                     "absent, the anonymous_id (one of the two is required).",
                                   json_schema_extra=PSEUDONYMOUS)
    anonymous_id: Identifier | None = Field(None, description="A visitor not yet known (cookie, app install id); "
                                                              "linked to a customer by an identify event.",
                                            json_schema_extra=PSEUDONYMOUS)
    device_id: Identifier | None = Field(None, description="A device id (may be shared: by default it never links "
                                                           "customers).", json_schema_extra=PSEUDONYMOUS)
    email_hash: Identifier | None = Field(None, description="The email's keyed pseudonym (h-<HMAC>; the edge "
                                                            "replaces a clear email with it).",
                                          json_schema_extra=PSEUDONYMOUS)
    phone_hash: Identifier | None = Field(None, description="The phone number's keyed pseudonym (h-<HMAC>).",
                                          json_schema_extra=PSEUDONYMOUS)
    chat_handle: Identifier | None = Field(None, description="A chat or social handle.",
                                           json_schema_extra=PSEUDONYMOUS)
    loyalty_id: Identifier | None = Field(None, description="A loyalty card or programme id.",
                                          json_schema_extra=PSEUDONYMOUS)
    resolved_from: Identifier | None = Field(None, description="Set by the identity stage on the identified-* "
                                                               "topics only: the subject (customer_id, or "
                                                               "anonymous_id) an event re-keyed onto another "
                                                               "customer had; lateness is checked per origin. "
                                                               "Ignored on an input topic (the stage strips it).",
                                             json_schema_extra=PSEUDONYMOUS)
    event_time: UtcDatetime = Field(description="When it happened, ISO 8601 with a zone; stored in UTC.")
    schema_version: StrictInt = Field(SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)

    @model_validator(mode="before")
    @classmethod
    def _subject(cls, data: Any) -> Any:
        """``customer_id`` or ``anonymous_id`` (at least one); linking events need ``customer_id``."""
        if not isinstance(data, dict) or data.get("customer_id") is not None:
            return data
        if data.get("type") in LINKING_TYPES:
            raise PydanticCustomError("missing_identity", "an {kind} event needs a customer_id",
                                      {"kind": data.get("type")})
        anonymous = data.get("anonymous_id")
        if anonymous is None:
            raise PydanticCustomError("missing_identity", "the event has neither customer_id nor anonymous_id")
        return {**data, "customer_id": anonymous}
