"""Contracts of data-rights requests (topic ``privacy-requests``) and their audit (topic ``privacy-audit``).

Neither carries a customer id in clear: a customer is named by ``subject``, the keyed hash
(HMAC) of their id (streams/pseudonym.py). A request is produced to the partition the
customer's events use (Kafka's partitioner over the clear id), so the worker that holds the
customer's state reads it; the worker finds the key whose HMAC is the subject.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Contract, Identifier, UtcDatetime

Subject = Field(pattern=r"^[0-9a-f]{32}$", description="HMAC-SHA256 (first 128 bits, hex) of the customer id.")


class PrivacyRequest(Contract):
    """A data-rights request for one customer (topic ``privacy-requests``).

    ``erase``: drop the customer's state (changelog tombstone), pending timers and held
    messages, suppress later messages, and audit it. ``suppress``: only (re)build the
    suppression list, e.g. for a fresh embedded broker after erasures made while it was down.
    """

    request_id: Identifier
    subject: str = Subject
    kind: Literal["erase", "suppress"]
    requested_at: UtcDatetime
    schema_version: int = SCHEMA_VERSION


AuditAction = Literal["erase", "export", "suppress"]


class PrivacyAudit(Contract):
    """One place a request was carried out (topic ``privacy-audit``, table ``privacy_audit``): no personal data."""

    request_id: Identifier
    subject: str = Subject
    action: AuditAction
    location: str = Field(max_length=256, description="e.g. 'processor:features', 'clickhouse:order_events'.")
    rows: int = Field(0, ge=0, description="Keys, rows or timers removed (or exported) there.")
    detail: str = Field("", max_length=1024, description="What was done, never a value.")
    completed_at: UtcDatetime
    schema_version: int = SCHEMA_VERSION
