"""Redrive dead letters: their original bytes back onto their original topic, through the normal path.

``journey dead-letters redrive [--reason R] [--since T]`` reads the ``dead-letters`` topic to its
end and, for each letter that matches, produces its original key and value to its source topic:

- a message that could not be delivered (``delivery_failed``) goes back on ``messages``: every
  delivery group reads it again, and each adapter's ledger (streams/delivery_ledger.py) lets
  only the adapters that have not delivered it send it;
- a rejected input record goes back on its input topic, where the sink and the processors
  validate it again (after a fix: a schema upgrade, a clock skew corrected) or dead-letter it
  again with a new ``received_at``.

Idempotent: each letter redriven is recorded on the compacted topic
``<prefix>-dead-letter-redrives``, keyed by the letter's id and ``received_at`` (one rejection),
and a letter recorded there is not redriven again; a letter rejected again after a redrive is a
new rejection and can be redriven again. A crash between producing a record and its redrive
record can redrive that one letter twice (the ledger still stops a second send of a message).

Not redriven, counted with the reason: a truncated original (an oversized record of which the
letter kept only a part: the bytes are not the record any more), an original whose personal data
was redacted (``[email]``, ``[phone]``, ``[ip]`` in it), and a letter whose source topic is not one
the pipeline reads (``unknown_topic``).
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from plumbing.produce import TrackingProducer
from schemas.registry import DEAD_LETTERS, INPUT_TOPICS, MESSAGES
from streams.topic_reader import read_to_end
from streams.topics import DEFAULT_PREFIX, ensure_compacted

REDRIVABLE = frozenset({*INPUT_TOPICS, MESSAGES})
_OVERSIZED = re.compile(r"^(\d+) bytes")
_REDACTED = (b"[email]", b"[phone]", b"[ip]")


def redrives_topic(prefix: str = DEFAULT_PREFIX) -> str:
    """The compacted topic that records which dead letters were redriven, e.g. ``journey-dead-letter-redrives``."""
    return f"{prefix}-dead-letter-redrives"


@dataclass
class RedriveStats:
    #: Letters produced back onto their source topic, by source topic.
    redriven: Counter[str] = field(default_factory=Counter)
    #: Letters matching the filters that were not redriven, by why: already_redriven, truncated, redacted,
    #: unknown_topic.
    skipped: Counter[str] = field(default_factory=Counter)
    #: Letters read that the filters left out.
    filtered: int = 0


def _unusable(letter: dict[str, object], original: bytes, key: bytes | None) -> str | None:
    """Why the letter's original cannot be redriven as it was, or None."""
    if letter.get("truncated"):
        return "truncated"
    size = _OVERSIZED.match(str(letter.get("detail", "")))
    if letter.get("reason") == "oversized" and size and len(original) < int(size.group(1)):
        return "truncated"
    if any(token in original for token in _REDACTED) or key == b"[identifier]":
        return "redacted"
    if letter.get("source_topic") not in REDRIVABLE:
        return "unknown_topic"
    return None


def redrive(kafka: dict[str, str], prefix: str = DEFAULT_PREFIX, reason: str | None = None,
            since: datetime | None = None) -> RedriveStats:
    """Redrive the dead letters matching ``reason`` and received at or after ``since``; see the module doc."""
    done_topic = redrives_topic(prefix)
    ensure_compacted(kafka, done_topic, like=DEAD_LETTERS)
    done = {key for _, key, value in read_to_end(kafka, done_topic) if key is not None and value is not None}
    stats = RedriveStats()
    producer = TrackingProducer(kafka, **{"linger.ms": 5})
    seen: set[bytes] = set()
    for _, _, value in read_to_end(kafka, DEAD_LETTERS):
        try:
            letter = orjson.loads(value or b"")
            received = datetime.fromisoformat(letter["received_at"])
            instance = f"{letter['dead_letter_id']}@{letter['received_at']}".encode()
            original = base64.b64decode(letter["original"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            stats.skipped["not_a_dead_letter"] += 1
            continue
        if (reason is not None and letter.get("reason") != reason) or (since is not None and received < since):
            stats.filtered += 1
            continue
        if instance in seen:
            continue  # the same letter produced twice (at least once on the topic): one redrive
        seen.add(instance)
        if instance in done:
            stats.skipped["already_redriven"] += 1
            continue
        key = base64.b64decode(letter["key"]) if letter.get("key") else None
        why = _unusable(letter, original, key)
        if why is not None:
            stats.skipped[why] += 1
            continue
        producer.send_raw(letter["source_topic"], key, original)
        producer.send_raw(done_topic, instance, orjson.dumps({"dead_letter_id": letter["dead_letter_id"],
                                                              "source_topic": letter["source_topic"]}))
        stats.redriven[letter["source_topic"]] += 1
    producer.flush()
    return stats
