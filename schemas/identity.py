"""Identity resolution on the topics: the ``identity-merges`` contract and the resolved input topics.

The identity stage (streams/identity.py) reads the input topics, resolves each event's subject to its
canonical profile id (processors/identity/) and writes the event, keyed and with ``customer_id`` set to
that id, to ``identified-<topic>``; the features processor reads those. Every link, merge and refused
link is an :class:`IdentityMerge` record on ``identity-merges`` (keyed by ``from_id``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Contract, Identifier, UtcDatetime
from schemas.personal import PSEUDONYMOUS

IDENTIFIED_PREFIX = "identified-"
#: Retired profiles' states on their way to the canonical customer (features worker to itself; internal).
PROFILE_HANDOFFS = "profile-handoffs"
_INPUTS = ("clickstream", "orders", "chat", "consent")


def identified(topic: str) -> str:
    """The resolved topic of input topic ``topic``."""
    return IDENTIFIED_PREFIX + topic


#: The resolved input topics.
IDENTIFIED_TOPICS: frozenset[str] = frozenset(identified(t) for t in _INPUTS)


def source_topic(topic: str) -> str:
    """The input topic whose contract a (possibly resolved) topic carries: ``identified-orders`` -> ``orders``."""
    return topic.removeprefix(IDENTIFIED_PREFIX)


class IdentityMerge(Contract):
    """One decision of the identity graph (topic ``identity-merges``, table ``identity_merges``).

    ``linked``: identifier ``from_kind:from_id`` now belongs to customer ``into_id``. ``merged``: profile
    ``from_id`` (an anonymous visitor, or a customer by an alias) was merged into ``into_id`` and retired.
    ``refused``: the rules kept ``from_id`` out of ``into_id`` (``reason`` says why: ``known_conflict``,
    two known customers without an alias; ``cap``, the component would exceed the size cap).
    """

    record_id: Identifier = Field(description="Derived from the event's id: a record produced again is the same.")
    action: Literal["linked", "merged", "refused"]
    reason: Literal["identify", "alias", "auto", "known_conflict", "cap"]
    from_kind: Literal["customer_id", "anonymous_id", "device_id", "email_hash", "phone_hash", "chat_handle",
                       "loyalty_id"]
    from_id: Identifier = Field(json_schema_extra=PSEUDONYMOUS)
    into_id: Identifier = Field(json_schema_extra=PSEUDONYMOUS)
    event_id: Identifier = Field(description="The event that made the decision.")
    event_time: UtcDatetime
    schema_version: int = SCHEMA_VERSION
