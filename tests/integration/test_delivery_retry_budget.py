"""A delivery batch keeps to its time budget, so a down or slow endpoint cannot get the worker evicted.

The real worker reads ``messages`` from the broker (all on one partition, so its first poll takes
them as one batch) and posts them to a loopback receiver:

- a refusing endpoint, with no retry window (``retry_window=0``: nothing is parked; ``eager=False``: the
  messages make one batch, whose budget this is): retries stop where the budget ends; those messages are
  dead-lettered as after the last retry (reason
  ``delivery_failed``), and the sink stores the letters and the ``deliveries`` rows with the
  attempts really made (test_delivery_faults.py has the parking within a window). Time is a fake
  clock that moves when the worker sleeps, so the numbers do not depend on how fast this machine answers HTTP;
- a slow endpoint (each answer takes 0.6 s, budget 1 s): once the budget is spent the rest of the
  batch is handed back to the consumer and comes again at the next poll; every message is
  posted exactly once and delivered.
"""

from __future__ import annotations

import orjson
import pytest

from streams.delivery import WebhookSender
from streams.progress import end_offsets_by_eof
from tests.conftest import Backend, sink_until_caught_up
from tests.fake_clock import FakeClock
from tests.integration.delivering import deliver_all, made_messages, produce_to_partition
from tests.loopback import Receiver

pytestmark = pytest.mark.integration


def test_retries_stop_at_the_batch_budget_and_dead_letter(backend: Backend,
                                                          receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(4)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    handler.fail = 10**6
    clock = FakeClock()
    # Budget 1.0 s, waits 0.4, 0.8, ...: the first message retries once (0.4 + 0.8 would pass the
    # budget), the second once (ends at 0.8), the last two get no retry (0.8 + 0.4 passes it).
    worker = deliver_all(backend.kafka, WebhookSender(url, None, timeout=2.0), "deliver-budget", len(messages),
                         retries=5, backoff=0.4, retry_budget=1.0, clock=clock, sleep=clock.sleep, retry_window=0,
                         eager=False)
    assert worker.stats.outcomes == {"dead_lettered": 4} and worker.stats.deferred == 0
    assert clock.slept == [0.4, 0.4]
    assert len(handler.received) == 2 + 2 + 1 + 1
    ids = [orjson.loads(v)["message_id"] for _, _, v in messages]

    ends = end_offsets_by_eof(backend.kafka, ["messages", "dead-letters", "deliveries"])
    client = backend.client()
    sink_until_caught_up(backend, client, ends)
    rows = client.query("SELECT message_id, status, attempts, detail FROM deliveries FINAL").result_rows
    spent = "HTTP 500 (retry budget of the batch spent) (retry window of 0 s spent)"
    assert sorted(rows) == sorted([(ids[0], "dead_lettered", 2, spent), (ids[1], "dead_lettered", 2, spent),
                                   (ids[2], "dead_lettered", 1, spent), (ids[3], "dead_lettered", 1, spent)])
    letters = client.query("SELECT source_offset, reason, detail FROM dead_letters WHERE source_topic = 'messages' "
                           "ORDER BY source_offset").result_rows
    assert [tuple(r) for r in letters] == [(0, "delivery_failed", f"webhook: 2 attempts, last: {spent}"),
                                           (1, "delivery_failed", f"webhook: 2 attempts, last: {spent}"),
                                           (2, "delivery_failed", f"webhook: 1 attempts, last: {spent}"),
                                           (3, "delivery_failed", f"webhook: 1 attempts, last: {spent}")]


def test_a_slow_endpoint_leaves_the_rest_of_the_batch_for_the_next_poll(
        backend: Backend, receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(5)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    handler.delay = 0.6
    # Each poll: a message ends at 0.6 s, the next starts (before 1 s) and ends at 1.2 s, the rest is
    # handed back: 5 messages take three polls, 3 then 1 handed back.
    worker = deliver_all(backend.kafka, WebhookSender(url, None, timeout=5.0), "deliver-slow", len(messages),
                         retries=3, backoff=0.01, retry_budget=1.0, eager=False)
    assert worker.stats.outcomes == {"delivered": 5} and worker.stats.consumed == 5
    assert worker.stats.deferred == 3 + 1
    assert handler.statuses == [204] * 5, "each message posted once"
    assert [body for _, body in handler.received] == [v for _, _, v in messages], "in offset order"
