"""Deterministic ids: the same replay gives the same trigger ids, so consumers can deduplicate."""

from __future__ import annotations

import hashlib


def derived_id(prefix: str, *parts: str | int) -> str:
    """``prefix-<32 hex>`` from the parts, each length-prefixed so no two part lists collide."""
    digest = hashlib.blake2b(digest_size=16, person=b"journey-trigger")
    for part in parts:
        data = str(part).encode()
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return f"{prefix}-{digest.hexdigest()}"


def trigger_id(customer_id: str, trigger: str, anchor: str, fired_at_ms: int) -> str:
    """A trigger's id from its customer, rule, the event (or score) it anchored on, and when it fired."""
    return derived_id("trg", customer_id, trigger, anchor, fired_at_ms)
