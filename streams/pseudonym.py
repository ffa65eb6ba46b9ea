"""The keyed hash (HMAC-SHA256) that stands in for a direct identifier or, in privacy records, a customer id.

The key comes from the ``privacy_key`` setting (a ``SecretStr``: never logged or printed).
Without one, a random key is made once and kept in ``<data dir>/privacy.key`` (mode 0600),
so a local pipeline is pseudonymized too; a deployment sets ``JOURNEY_PRIVACY_KEY`` on every
producer and worker. The same key must stay in use: a new key gives new pseudonyms, so joins
across the change and the erased-ids suppression list stop matching.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

KEY_FILE = "privacy.key"
#: Hex digits of a pseudonym: 128 bits, enough that two customers never share one.
DIGITS = 32


class Pseudonymizer:
    """``subject(value)``: the HMAC of a value as hex; ``pseudonym(value)``: the same as an id (``h-<hex>``)."""

    __slots__ = ("_key",)

    def __init__(self, key: SecretStr | bytes) -> None:
        raw = key.get_secret_value().encode() if isinstance(key, SecretStr) else key
        if len(raw) < 16:
            raise ValueError("the privacy key must be at least 16 bytes")
        self._key = raw

    def subject(self, value: str) -> str:
        """The keyed hash of ``value`` (hex): how privacy requests, audit rows and suppressions name a customer."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:DIGITS]

    def pseudonym(self, value: str) -> str:
        """An identifier standing in for a direct identifier (email, phone) where a join needs it."""
        return f"h-{self.subject(value.strip().lower())}"

    def __repr__(self) -> str:
        return "Pseudonymizer(key=**********)"


def load_key(configured: SecretStr | None, data_dir: Path) -> SecretStr:
    """The configured key, or the local one in ``data_dir`` (created on first use, readable by its owner only)."""
    if configured is not None:
        return configured
    path = data_dir / KEY_FILE
    if not path.exists():
        # Written in full under a private name, then linked into place: the workers of a run start
        # together, and none may read the file while another is still writing it.
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
            os.link(draft, path)
        except FileExistsError:  # another process made it first: theirs is the key
            pass
        finally:
            draft.unlink()
    return SecretStr(path.read_text().strip())
