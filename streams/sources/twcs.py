"""Customer Support on Twitter replay: customer and agent tweets -> chat, threads -> conversations.

Columns: an unnamed index, ``tweet_id, author_id, inbound, created_at, text,
response_tweet_id, in_response_to_tweet_id``; ``created_at`` reads like
``Tue Oct 31 22:10:47 +0000 2017``.

- ``inbound=True`` is a customer (``sender_role="customer"``, ``customer_id=author_id``);
  any other author is a brand's support account (``sender_role="agent"``).
- ``conversation_id`` is the thread's root tweet id: ``in_response_to_tweet_id`` is
  followed up while the parent is in the file.
- An agent tweet belongs to the customer who wrote the nearest inbound tweet above it in
  its thread. One with no such ancestor in the file gives no record and is counted as
  ``agent_message_without_customer``.
- ``in_reply_to`` is the parent's event id when the parent is in the file and has a record.
- ``event_id`` is derived from the tweet id (the row's key: a reply can name its parent's
  id before the parent is read). ``channel="social"``; ``language`` stays unknown.
- Also counted, never dropped silently: ``malformed_row`` (no id, author or time, as when
  a tweet's text broke the CSV), ``duplicate_tweet_id`` (the first row wins),
  ``bad_timestamp`` and ``invalid_<field>`` (a value the chat contract refuses).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from schemas.chat import ChatMessage
from streams.sources.record import SourceRecord, derive_event_id, record_of, sort_by_event_time
from streams.sources.stats import ReplayStats

SOURCE = "twcs"
Row = dict[str, str]


def tweet_time(text: str) -> datetime:
    """``Tue Oct 31 22:10:47 +0000 2017`` as an aware UTC datetime."""
    return datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)


def tweet_event_id(tweet_id: str) -> str:
    """The event id of a tweet's record (stable across replays)."""
    return derive_event_id(SOURCE, tweet_id.encode())


def _tweet_id(raw: str | None) -> str | None:
    """A reply id as written (``3.0``: pandas wrote the column as floats) back to the tweet id."""
    raw = (raw or "").strip()
    if not raw:
        return None
    return raw[:-2] if raw.endswith(".0") else raw


def twcs(path: Path, stats: ReplayStats | None = None) -> list[SourceRecord]:
    """Every tweet with a known customer as a chat record, sorted by event time (stable)."""
    stats = stats if stats is not None else ReplayStats()
    rows: dict[str, Row] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            stats.rows += 1
            if not row.get("tweet_id") or not row.get("author_id") or not row.get("created_at"):
                stats.skipped["malformed_row"] += 1
            elif row["tweet_id"] in rows:
                stats.skipped["duplicate_tweet_id"] += 1
            else:
                rows[row["tweet_id"]] = row
    threads = _threads(rows)
    # A reply may come before its parent in the file, so every event is built first and the
    # reply links are added after: a link only ever points at a tweet that has a record.
    events: dict[str, ChatMessage] = {}
    for tweet_id, row in rows.items():
        root, customer = threads[tweet_id]
        if customer is None:
            stats.skipped["agent_message_without_customer"] += 1
            continue
        try:
            when = tweet_time(row["created_at"])
        except ValueError:
            stats.skipped["bad_timestamp"] += 1
            continue
        try:
            events[tweet_id] = ChatMessage(
                type="chat_message", event_id=tweet_event_id(tweet_id), customer_id=customer, event_time=when,
                conversation_id=root, sender_role="customer" if row["inbound"] == "True" else "agent",
                channel="social", text=row["text"] or "")
        except ValidationError as exc:
            stats.skipped[f"invalid_{exc.errors()[0]['loc'][0]}"] += 1
    records: list[SourceRecord] = []
    for tweet_id, event in events.items():
        parent = _tweet_id(rows[tweet_id]["in_response_to_tweet_id"])
        linked = event
        if parent is not None and parent in events and parent != tweet_id:
            linked = event.model_copy(update={"in_reply_to": events[parent].event_id})
        stats.emitted["chat_message"] += 1
        records.append(record_of(linked))
    return sort_by_event_time(records)


def _threads(rows: dict[str, Row]) -> dict[str, tuple[str, str | None]]:
    """Per tweet: (root tweet id, customer or None), following reply links up while the parent is in the file."""
    resolved: dict[str, tuple[str, str | None]] = {}
    for start in rows:
        chain: list[str] = []
        seen: set[str] = set()
        node: str | None = start
        while node is not None and node in rows and node not in resolved and node not in seen:
            seen.add(node)
            chain.append(node)
            node = _tweet_id(rows[node]["in_response_to_tweet_id"])
        # The top of the chain: an already resolved tweet, or the root (parent absent, or a cycle).
        if node is not None and node in resolved:
            root, customer = resolved[node]
        else:
            root, customer = chain[-1], None
        for tweet_id in reversed(chain):  # from the top down: the nearest inbound ancestor wins
            if rows[tweet_id]["inbound"] == "True":
                customer = rows[tweet_id]["author_id"]
            resolved[tweet_id] = (root, customer)
    return resolved
