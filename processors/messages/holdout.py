"""Holdout group: a stable share of customers gets triggers recorded but no message, to measure uplift.

Membership is a hash of the customer id (with a salt), not a random draw, so it is the
same on every worker, in every replay and after every restart, without any state.
Service triggers are not part of the experiment: the message processor exempts them.
"""

from __future__ import annotations

import hashlib


def holdout_bucket(customer_id: str, salt: str) -> float:
    """A number in [0, 1) fixed by the customer id and the salt, uniform over customers."""
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8, key=salt.encode()[:64])
    return int.from_bytes(digest.digest(), "big") / 2**64


def in_holdout(customer_id: str, share: float, salt: str) -> bool:
    """Whether the customer is in the holdout group of size ``share`` (0..1)."""
    return holdout_bucket(customer_id, salt) < share
