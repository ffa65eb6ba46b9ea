"""Delivery under faults, on the real broker and a real loopback receiver: nothing lost, nothing sent twice.

Each test feeds messages the processors made from generated traffic to ``messages`` (one partition,
in order) and runs the real :class:`DeliveryWorker` against ``tests/loopback.py``'s receiver:

- the same input twice, a restart mid-run and a "crash before the commit" (a group with no
  committed offsets) with the same ledger file: each message id is POSTed once;
- the receiver answering 500, 503 or 429, or closing the connection, for its first requests:
  those messages are parked on the retry topic and delivered later; exact counts of posts,
  parkings, re-reads and deliveries, no dead letter;
- a slow receiver (past the send timeout): parked and sent again (the receiver got those twice:
  the at-least-once a timeout cannot avoid; the message id header lets it deduplicate);
- the receiver down, then back within the retry window: every message delivered once, none dead;
- the receiver down past the retry window: every message dead-lettered (reason ``delivery_failed``),
  then, with the receiver back, ``redrive`` puts them back on ``messages`` and each is delivered
  once; a second redrive sends nothing, and another group reading all of ``messages`` with the same
  ledger sends nothing either;
- each redirect status: dead-lettered after one POST, no GET;
- messages older than the maximum age: recorded ``stale`` by the webhook, not by the console;
- dead-lettered input records: redriven once onto their topic, byte for byte; truncated and
  redacted originals skipped with a count.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.validation import dead_letter
from streams.delivery import ConsoleSender, WebhookSender
from streams.delivery_ledger import FileLedger, TopicLedger, ledger_topic
from streams.redrive import redrive
from streams.senders import TIMESTAMP_HEADER
from streams.sources.generator import generate
from tests.conftest import Backend, produce
from tests.integration.delivering import (
    deliver_until,
    made_messages,
    produce_to_partition,
    running_worker,
    wait_for,
)
from tests.integration.test_privacy import read_topic
from tests.loopback import Receiver, free_port, start_receiver, stop_receiver

pytestmark = pytest.mark.integration

N = 6
#: Parked messages come back quickly in these tests; real settings wait seconds to minutes.
FAST = {"retries": 1, "backoff": 0.01, "park_backoff": 0.05, "park_backoff_max": 0.2}


def _ids(messages: list[tuple[str, bytes | None, bytes]]) -> list[str]:
    return [orjson.loads(v)["message_id"] for _, _, v in messages]


def _posted(handler: type[Receiver]) -> list[str]:
    return [headers["X-Journey-Message-Id"] for headers, _ in handler.received]


def test_the_same_input_twice_and_restarts_deliver_each_message_once(
        backend: Backend, receiver: tuple[str, type[Receiver]], tmp_path: Path) -> None:
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    ledger = tmp_path / "deliver-webhook.ids"
    sender = WebhookSender(url, None)
    handler.delay = 1.0  # each answer takes a second: the stop comes while the third is on its way
    # Stopped mid-run (one message per batch), then restarted in the same group: it goes on.
    first = deliver_until(backend.kafka, sender, "once", lambda w: w.stats.outcomes["delivered"] >= 2,
                          ledger=FileLedger(ledger), batch_rows=1)
    assert 2 <= first.stats.outcomes["delivered"] < N
    handler.delay = 0.0
    second = deliver_until(backend.kafka, sender, "once",
                           lambda w: first.stats.outcomes["delivered"] + w.stats.outcomes["delivered"] == N,
                           ledger=FileLedger(ledger))
    assert second.stats.duplicates == 0
    # A crash before the commit, or a new run on a fresh broker, reads everything again: the ledger
    # stops every send. The same input produced again (a second run) too.
    produce_to_partition(backend.kafka, messages)
    again = deliver_until(backend.kafka, sender, "once-again", lambda w: w.stats.duplicates == 2 * N,
                          ledger=FileLedger(ledger))
    assert again.stats.outcomes == {} and again.stats.attempts == 0
    assert sorted(_posted(handler)) == sorted(_ids(messages)), "each message id POSTed exactly once"
    assert ledger.read_text().splitlines() == [f"{mid} 1" for mid in _posted(handler)]


def test_the_topic_ledger_stops_a_resend_after_the_group_reads_everything_again(
        backend: Backend, receiver: tuple[str, type[Receiver]]) -> None:
    """Workers on several machines: the ledger on a compacted topic, read at assignment."""
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages, partition=1)
    url, handler = receiver
    sender = WebhookSender(url, None)
    group = "journey-deliver-webhook"
    first = deliver_until(backend.kafka, sender, group, lambda w: w.stats.outcomes["delivered"] == N,
                          ledger=TopicLedger(backend.kafka, ledger_topic(group)))
    assert first.stats.duplicates == 0
    # As after a crash before the commit (or offsets reset): the group starts again from offset 0.
    rewind = Consumer({**backend.kafka, "group.id": group, "enable.auto.commit": False})
    rewind.commit(offsets=[TopicPartition("messages", 1, 0)], asynchronous=False)
    rewind.close()
    again = deliver_until(backend.kafka, sender, group, lambda w: w.stats.duplicates == N,
                          ledger=TopicLedger(backend.kafka, ledger_topic(group)))
    assert again.stats.attempts == 0 and again.stats.consumed == N
    assert sorted(_posted(handler)) == sorted(_ids(messages)), "each message id POSTed exactly once"
    ledger = read_topic(backend.kafka, ledger_topic(group), backend.partitions)
    assert sorted(ledger) == sorted((mid.encode(), b"1") for mid in _ids(messages))


@pytest.mark.parametrize(("fault", "status"), [("fail", 500), ("fail", 503), ("fail", 429), ("close", 0)])
def test_failing_answers_park_the_messages_until_they_are_delivered(
        backend: Backend, receiver: tuple[str, type[Receiver]], fault: str, status: int) -> None:
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    setattr(handler, fault, 3)
    handler.fail_status = status or 500
    worker = deliver_until(backend.kafka, WebhookSender(url, None, timeout=5.0), f"faults-{fault}-{status}",
                           lambda w: w.stats.outcomes["delivered"] == N, retry_window=600, **FAST)
    stats = worker.stats
    assert stats.outcomes == {"retrying": 3, "delivered": N} and stats.retried == 3
    assert stats.attempts == N + 3 and stats.dead_letters == {} and stats.duplicates == 0
    assert handler.statuses == [status] * 3 + [204] * N
    delivered = [mid for mid, answer in zip(_posted(handler), handler.statuses, strict=True) if answer == 204]
    assert sorted(delivered) == sorted(_ids(messages)), "each message delivered once"
    parked = read_topic(backend.kafka, worker.retry_topic, backend.partitions)
    assert len(parked) == 3 and {v for _, v in parked} <= {v for _, _, v in messages}


def test_a_slow_receiver_past_the_timeout_gets_the_message_again_later(
        backend: Backend, receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    handler.slow, handler.delay = 2, 1.5
    worker = deliver_until(backend.kafka, WebhookSender(url, None, timeout=0.5), "faults-slow",
                           lambda w: w.stats.outcomes["delivered"] == N, retry_window=600, **FAST)
    assert worker.stats.outcomes == {"retrying": 2, "delivered": N} and worker.stats.retried == 2
    wait_for(lambda: len(handler.statuses) == N + 2, 30)  # the two slow answers come after the timeouts
    assert sorted(set(_posted(handler))) == sorted(_ids(messages)) and len(handler.received) == N + 2


def test_a_receiver_down_then_back_within_the_window_gets_every_message_once(backend: Backend) -> None:
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages)
    port = free_port()
    with running_worker(backend.kafka, WebhookSender(f"http://127.0.0.1:{port}/hook", None, timeout=2.0),
                        "faults-down", retry_window=600, **FAST) as worker:
        wait_for(lambda: worker.stats.outcomes["retrying"] >= N, 120, worker)  # every message parked at least once
        server, handler = start_receiver(port)
        try:
            wait_for(lambda: worker.stats.outcomes["delivered"] == N, 120, worker)
        finally:
            stop_receiver(server)
    assert worker.stats.dead_letters == {} and worker.stats.duplicates == 0
    assert sorted(_posted(handler)) == sorted(_ids(messages)) and handler.statuses == [204] * N
    assert worker.stats.retried == worker.stats.outcomes["retrying"], "each parking read back once"


def test_past_the_window_messages_are_dead_letters_and_a_redrive_sends_each_once(
        backend: Backend, tmp_path: Path) -> None:
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages)
    port = free_port()
    ledger = tmp_path / "ledger.ids"
    sender = WebhookSender(f"http://127.0.0.1:{port}/hook", None, timeout=2.0)
    with running_worker(backend.kafka, sender, "faults-window", retry_window=0.5, ledger=FileLedger(ledger),
                        **FAST) as worker:
        wait_for(lambda: worker.stats.dead_letters["delivery_failed"] == N, 120, worker)
        assert worker.stats.outcomes["dead_lettered"] == N and worker.stats.outcomes["delivered"] == 0
        letters = [orjson.loads(v) for _, v in read_topic(backend.kafka, "dead-letters", backend.partitions)]
        assert sorted((d["source_topic"], d["source_offset"], d["reason"]) for d in letters) == [
            ("messages", n, "delivery_failed") for n in range(N)], "the original record's place, not the retry's"
        assert all("retry window of 0.5 s spent" in d["detail"] for d in letters)
        server, handler = start_receiver(port)
        try:
            first = redrive(backend.kafka, prefix="faults")
            assert (first.redriven, first.skipped) == ({"messages": N}, {})
            wait_for(lambda: worker.stats.outcomes["delivered"] == N, 120, worker)
            second = redrive(backend.kafka, prefix="faults")
            assert (second.redriven, second.skipped) == ({}, {"already_redriven": N})
        finally:
            stop_receiver(server)
    assert sorted(_posted(handler)) == sorted(_ids(messages)), "each message delivered once after the redrive"
    # Another group reading all of messages (originals and redriven copies) with the same ledger sends nothing.
    other = deliver_until(backend.kafka, sender, "faults-window-other", lambda w: w.stats.duplicates == 2 * N,
                          ledger=FileLedger(ledger))
    assert other.stats.attempts == 0 and len(handler.received) == N


def test_each_redirect_is_dead_lettered_after_one_post_and_never_followed(
        backend: Backend, receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(2)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    for status in (301, 302, 303, 307, 308):
        handler.received.clear()
        handler.statuses.clear()
        handler.fail, handler.fail_status = 10, status
        worker = deliver_until(backend.kafka, WebhookSender(url, None), f"redirect-{status}",
                               lambda w: w.stats.outcomes["dead_lettered"] == 2, retry_window=600, **FAST)
        assert worker.stats.outcomes == {"dead_lettered": 2} and worker.stats.retried == 0
        assert (handler.statuses, handler.gets) == ([status, status], [])
    letters = [orjson.loads(v) for _, v in read_topic(backend.kafka, "dead-letters", backend.partitions)]
    assert sorted(d["detail"].split(", last: ")[1].split(" redirect")[0] for d in letters) == sorted(
        f"HTTP {s}" for s in (301, 302, 303, 307, 308) for _ in range(2))


def test_messages_past_the_maximum_age_are_stale_for_the_webhook_not_the_console(
        backend: Backend, receiver: tuple[str, type[Receiver]], tmp_path: Path) -> None:
    old = made_messages(3)
    fresh = orjson.loads(old[0][2])
    fresh["message_id"] = "msg-fresh"
    fresh["send_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    messages = [*old, ("messages", old[0][1], orjson.dumps(fresh))]
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    hook = deliver_until(backend.kafka, WebhookSender(url, None), "stale-webhook",
                         lambda w: w.stats.outcomes.total() == 4, max_age=3600)
    assert hook.stats.outcomes == {"stale": 3, "delivered": 1}
    assert _posted(handler) == ["msg-fresh"] and TIMESTAMP_HEADER in handler.received[0][0]
    deliveries = [orjson.loads(v) for _, v in read_topic(backend.kafka, "deliveries", backend.partitions)]
    stale = sorted(d["message_id"] for d in deliveries if d["status"] == "stale")
    assert stale == sorted(_ids(old))
    assert all("past delivery_max_age_seconds (3600 s)" in d["detail"] for d in deliveries if d["status"] == "stale")
    # The console (journey run, and its replays of old history) has no age limit.
    out = tmp_path / "delivered.jsonl"
    console = deliver_until(backend.kafka, ConsoleSender(out), "stale-console",
                            lambda w: w.stats.outcomes.total() == 4, max_age=3600)
    assert console.stats.outcomes == {"delivered": 4} and len(out.read_bytes().splitlines()) == 4


def test_dead_lettered_input_records_are_redriven_once_and_truncated_ones_skipped(backend: Backend) -> None:
    records = [r for r in generate(customers=3, days=1, seed=5) if r.topic == "clickstream"][:3]
    good, big, personal = records
    letters = [
        dead_letter("clickstream", 0, 5, good.key, good.value, "future_timestamp", "event_time is 2 days ahead"),
        dead_letter("clickstream", 0, 6, big.key, big.value[:40], "oversized",
                    f"{len(big.value)} bytes exceeds the limit of 40"),
        dead_letter("clickstream", 0, 7, personal.key, personal.value.replace(b'"', b'"a@b.com ', 1),
                    "clear_identifier", "an email in a field"),
    ]
    produce(backend.kafka, [("dead-letters", d.dead_letter_id.encode(), d.model_dump_json().encode())
                            for d in letters])
    since_later = datetime.now(UTC) + timedelta(hours=1)
    assert redrive(backend.kafka, prefix="inputs", since=since_later).filtered == 3
    only = redrive(backend.kafka, prefix="inputs", reason="oversized")
    assert (only.redriven, only.skipped, only.filtered) == ({}, {"truncated": 1}, 2)
    first = redrive(backend.kafka, prefix="inputs")
    assert (first.redriven, first.skipped) == ({"clickstream": 1}, {"truncated": 1, "redacted": 1})
    second = redrive(backend.kafka, prefix="inputs")
    assert (second.redriven, second.skipped) == ({}, {"already_redriven": 1, "truncated": 1, "redacted": 1})
    assert read_topic(backend.kafka, "clickstream", backend.partitions) == [(good.key, good.value)]
    assert base64.b64decode(letters[1].original) == big.value[:40]
