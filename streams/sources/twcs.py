"""Customer Support on Twitter replay: customer and agent tweets -> chat, threads -> conversations.

A conversation is the thread's root tweet (followed through ``in_response_to_tweet_id``
while the parent is in the file). An agent tweet belongs to the customer of the nearest
customer tweet above it in its thread; one with no customer in the file is counted as
skipped ("agent_message_without_customer").
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from schemas.chat import ChatMessage
from streams.sources.record import SourceRecord, derive_event_id, record_of
from streams.sources.stats import ReplayStats

SOURCE = "twcs"


def tweet_time(text: str) -> datetime:
    return datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)


def twcs(path: Path, stats: ReplayStats | None = None) -> list[SourceRecord]:
    stats = stats or ReplayStats()
    rows: dict[str, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row["author_id"] or not row["created_at"]:
                stats.rows += 1
                stats.skipped["malformed_row"] += 1
            elif row["tweet_id"] in rows:
                stats.rows += 1
                stats.skipped["duplicate_tweet_id"] += 1
            else:
                rows[row["tweet_id"]] = row
    ids = {tweet_id: derive_event_id(SOURCE, tweet_id.encode()) for tweet_id in rows}

    def parent(row: dict[str, str]) -> dict[str, str] | None:
        raw = row["in_response_to_tweet_id"]
        return rows.get(str(int(float(raw)))) if raw else None

    # First pass: each tweet's conversation root and customer, so replies only point at emitted tweets.
    threads: dict[str, tuple[dict[str, str], str | None]] = {}
    for tweet_id, row in rows.items():
        root, node = row, row
        customer = row["author_id"] if row["inbound"] == "True" else None
        while (up := parent(node)) is not None:
            node = root = up
            if customer is None and up["inbound"] == "True":
                customer = up["author_id"]
        threads[tweet_id] = (root, customer)

    records = []
    for tweet_id, row in rows.items():
        stats.rows += 1
        root, customer = threads[tweet_id]
        if customer is None:
            stats.skipped["agent_message_without_customer"] += 1
            continue
        up = parent(row)
        replied = up is not None and threads[up["tweet_id"]][1] is not None
        event = ChatMessage(
            type="chat_message", event_id=ids[tweet_id], customer_id=customer, event_time=tweet_time(row["created_at"]),
            conversation_id=f"twcs-{root['tweet_id']}", sender_role="customer" if row["inbound"] == "True" else "agent",
            channel="social", text=row["text"][:10_000], in_reply_to=ids[up["tweet_id"]] if up and replied else None)
        stats.emitted["chat_message"] += 1
        records.append(record_of(event))
    records.sort(key=lambda r: r.event_time or datetime.max.replace(tzinfo=UTC))
    return records
