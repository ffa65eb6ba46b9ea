"""A message the webhook refuses after the last retry lands in ClickHouse's ``dead_letters``, once.

The real path: messages made by the trigger and message processors are on ``messages``; the
``deliver`` worker (``DeliveryWorker`` + ``WebhookSender``) posts them to an HTTP server on
loopback that answers 503, retries, and dead-letters them on ``dead-letters``; the sink, which
reads ``dead-letters`` too, stores each in ``dead_letters`` (reason ``delivery_failed``, the
original message bytes). The sink's own dead letters (invalid input), which it stores before
producing them, are read back and not stored twice; a second sink group reading everything
again adds nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from processors.messages.processor import MessagesProcessor
from processors.triggers.processor import TriggersProcessor
from streams.delivery import DeliveryWorker, WebhookSender
from streams.progress import end_offsets_by_eof
from streams.sources.generator import generate
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.processors.messages.helpers import pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def refusing_webhook() -> Iterator[tuple[str, list[bytes]]]:
    """An HTTP server on loopback answering every POST with 503; yields its URL and the bodies it got."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


def test_failed_deliveries_land_in_dead_letters_once(backend: Backend,
                                                     refusing_webhook: tuple[str, list[bytes]]) -> None:
    url, bodies = refusing_webhook
    records = [(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000))
               for r in generate(customers=30, days=6, seed=3)]
    fired, made = pipeline(records, TriggersProcessor(), MessagesProcessor())
    messages = [(t, k, v) for t, k, v in made if t == "messages"][:3]
    assert len(messages) == 3
    invalid = ("clickstream", b"c1", b"{not json")  # the sink's own dead letter
    decisions = [(t, k, v) for t, k, v in made if t != "messages"]
    fed = produce(backend.kafka, [(t, k, v) for t, k, v, _ in records] + fired + decisions + messages + [invalid])

    worker = DeliveryWorker(backend.kafka, "deliver-test", WebhookSender(url, "s3cret", timeout=2.0), retries=3,
                            backoff=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while worker.stats.outcomes["dead_lettered"] < len(messages) and time.monotonic() < deadline:
        assert thread.is_alive(), "the delivery worker died"
        time.sleep(0.1)
    stop.set()
    thread.join(30)
    assert worker.stats.outcomes == {"dead_lettered": len(messages)}
    assert len(bodies) == 3 * len(messages), "three attempts each"

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
    assert all("webhook: 3 attempts, last: HTTP 503" in r[3] for r in failed)
    stored = sorted(r[4] if isinstance(r[4], bytes) else r[4].encode() for r in failed)
    assert stored == sorted(v for _, _, v in messages), "the original message bytes are kept"
    deliveries = client.query("SELECT uniqExact(delivery_id) FROM deliveries WHERE status = 'dead_lettered'")
    assert deliveries.result_rows[0][0] == len(messages)
