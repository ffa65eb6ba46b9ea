"""A message the webhook refuses after the last retry lands in ClickHouse's ``dead_letters``, once.

The real path: messages made by the trigger and message processors are on ``messages``; the
``deliver`` worker (``DeliveryWorker`` + ``WebhookSender``) posts them to an HTTP server on
loopback that answers 500, retries, and dead-letters them on ``dead-letters``; the sink, which
reads ``dead-letters`` too, stores each in ``dead_letters`` (reason ``delivery_failed``, the
original message bytes). The sink's own dead letters (invalid input), which it stores before
producing them, are read back and not stored twice; a second sink group reading everything
again adds nothing.
"""

from __future__ import annotations

import pytest

from processors.messages.processor import MessagesProcessor
from processors.triggers.processor import TriggersProcessor
from streams.delivery import WebhookSender
from streams.progress import end_offsets_by_eof
from streams.sources.generator import generate
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.integration.delivering import deliver_all
from tests.loopback import Receiver
from tests.processors.messages.helpers import pipeline

pytestmark = pytest.mark.integration


def test_failed_deliveries_land_in_dead_letters_once(backend: Backend, receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    handler.fail = 10**6  # 500 to every POST
    records = [(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000))
               for r in generate(customers=30, days=6, seed=3)]
    fired, made = pipeline(records, TriggersProcessor(), MessagesProcessor())
    messages = [(t, k, v) for t, k, v in made if t == "messages"][:3]
    assert len(messages) == 3
    invalid = ("clickstream", b"c1", b"{not json")  # the sink's own dead letter
    decisions = [(t, k, v) for t, k, v in made if t != "messages"]
    fed = produce(backend.kafka, [(t, k, v) for t, k, v, _ in records] + fired + decisions + messages + [invalid])

    worker = deliver_all(backend.kafka, WebhookSender(url, "s3cret", timeout=2.0), "deliver-test", len(messages),
                         retries=3, backoff=0.01, retry_window=0)  # no window: dead-lettered after the retries
    assert worker.stats.outcomes == {"dead_lettered": len(messages)}
    assert len(handler.received) == 3 * len(messages), "three attempts each"

    ends = {**fed.end_offsets, **end_offsets_by_eof(backend.kafka, ["dead-letters", "deliveries"])}
    client = backend.client()
    sink_until_caught_up(backend, client, ends)
    # The sink's own letter went out on the topic after the insert: read it back too.
    ends = {**ends, **end_offsets_by_eof(backend.kafka, ["dead-letters"])}
    sink_until_caught_up(backend, client, ends, group="sink-again")

    rows = client.query("SELECT dead_letter_id, source_topic, reason, detail, original FROM dead_letters "
                        "ORDER BY source_topic, source_offset").result_rows
    by_reason: dict[str, list[tuple[object, ...]]] = {}
    for row in rows:
        by_reason.setdefault(row[2], []).append(row)
    assert len({r[0] for r in rows}) == len(rows), "no dead letter stored twice"
    assert sorted(by_reason) == ["delivery_failed", "malformed_json"]
    assert len(by_reason["malformed_json"]) == 1
    failed = by_reason["delivery_failed"]
    assert len(failed) == len(messages)
    assert {r[1] for r in failed} == {"messages"}
    assert all("webhook: 3 attempts, last: HTTP 500" in r[3] for r in failed)
    stored = sorted(r[4] if isinstance(r[4], bytes) else r[4].encode() for r in failed)
    assert stored == sorted(v for _, _, v in messages), "the original message bytes are kept"
    deliveries = client.query("SELECT uniqExact(delivery_id) FROM deliveries WHERE status = 'dead_lettered'")
    assert deliveries.result_rows[0][0] == len(messages)
