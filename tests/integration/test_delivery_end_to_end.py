"""Messages delivered end to end: ``messages`` topic -> DeliveryWorker -> real SMTP / webhook servers -> ClickHouse.

Messages made by the trigger and message processors from generated traffic are on ``messages``.
Two ``deliver`` workers read them, each in its own consumer group: one with the SMTP adapter
against an aiosmtpd server on loopback (e-mail messages only), one with the webhook adapter
against an HTTP receiver on loopback that checks the HMAC signature of every POST (401 when it
does not match). Each server gets exactly the messages it should, once, and the sink stores one
``deliveries`` row per message and adapter: ``delivered`` after one attempt. Records on
``messages`` that are not messages are dead-lettered with the reason, and the worker goes on.
"""

from __future__ import annotations

import base64
from email import message_from_bytes
from email.policy import default

import orjson
import pytest

from streams.delivery import SmtpSender, WebhookSender
from streams.progress import end_offsets_by_eof
from tests.conftest import Backend, produce, sink_until_caught_up
from tests.integration.delivering import deliver_all, made_messages, produce_to_partition
from tests.integration.test_privacy import read_topic
from tests.loopback import SMTP_LOGIN, SMTP_PASSWORD, Inbox, Receiver

pytestmark = pytest.mark.integration

SECRET = "webhook-signing-key"


def test_messages_reach_smtp_and_a_signed_webhook_once_each(backend: Backend, smtp_server: tuple[int, Inbox],
                                                            receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(10)
    sent = [orjson.loads(v) for _, _, v in messages]
    emails = [m for m in sent if m["channel"] == "email"]
    assert (len(sent), len(emails)) == (10, 5), "the generated traffic's first messages: 5 e-mails, 5 others"
    fed = produce(backend.kafka, list(messages))

    port, inbox = smtp_server
    smtp = SmtpSender("127.0.0.1", port, "shop@example.com", "{customer_id}@customers.test", SMTP_LOGIN,
                      SMTP_PASSWORD)
    by_mail = deliver_all(backend.kafka, smtp, "deliver-smtp", len(emails), retries=3, backoff=0.01)
    url, handler = receiver
    handler.secret = SECRET.encode()
    by_hook = deliver_all(backend.kafka, WebhookSender(url, SECRET, timeout=2.0), "deliver-webhook", len(sent),
                          retries=3, backoff=0.01)

    assert by_mail.stats.consumed == len(sent) and by_mail.stats.outcomes == {"delivered": len(emails)}
    assert by_hook.stats.consumed == len(sent) and by_hook.stats.outcomes == {"delivered": len(sent)}
    assert sorted((m.rcpt_tos, m.mail_from) for m in inbox.mails) == sorted(
        ([f"{m['customer_id']}@customers.test"], "shop@example.com") for m in emails)
    mails = [message_from_bytes(m.content, policy=default) for m in inbox.mails]
    got = [(mail["X-Journey-Message-Id"], mail["To"], mail["Subject"], _unix(mail.get_content())) for mail in mails]
    assert sorted(got) == sorted((m["message_id"], f"{m['customer_id']}@customers.test", m["subject"], m["body"] + "\n")
                                 for m in emails), "each e-mail once, with its subject and body"
    assert handler.statuses == [204] * len(sent), "every POST signed with the shared key, none retried"
    assert sorted(body for _, body in handler.received) == sorted(v for _, _, v in messages), "the exact bytes"
    assert sorted(h["X-Journey-Message-Id"] for h, _ in handler.received) == sorted(m["message_id"] for m in sent)

    ends = {**fed.end_offsets, **end_offsets_by_eof(backend.kafka, ["deliveries"])}
    client = backend.client()
    sink_until_caught_up(backend, client, ends)
    rows = client.query("SELECT adapter, message_id, customer_id, channel, status, attempts FROM deliveries FINAL "
                        "ORDER BY adapter, message_id").result_rows
    expected = sorted([("smtp", m["message_id"], m["customer_id"], "email", "delivered", 1) for m in emails]
                      + [("webhook", m["message_id"], m["customer_id"], m["channel"], "delivered", 1) for m in sent])
    assert [tuple(r) for r in rows] == expected



def _unix(text: str) -> str:
    """SMTP carries lines ending in CRLF: the text as the message processor wrote it."""
    return text.replace("\r\n", "\n")


def test_records_that_are_not_messages_are_dead_lettered_and_the_rest_delivered(
        backend: Backend, receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(2)
    first = orjson.loads(messages[0][2])
    bad = [b"{not json", b"[1, 2]", orjson.dumps({k: v for k, v in first.items() if k != "message_id"})]
    produce_to_partition(backend.kafka, [messages[0], *[("messages", b"c1", v) for v in bad], messages[1]])
    url, handler = receiver
    worker = deliver_all(backend.kafka, WebhookSender(url, None, timeout=2.0), "deliver-bad", 2, retries=2,
                         backoff=0.01)
    assert worker.stats.outcomes == {"delivered": 2} and worker.stats.consumed == 5
    assert worker.stats.dead_letters == {"malformed_json": 1, "not_an_object": 1, "missing_id": 1}
    assert [body for _, body in handler.received] == [v for _, _, v in messages], "only the messages are posted"
    letters = [orjson.loads(v) for _, v in read_topic(backend.kafka, "dead-letters", backend.partitions)]
    assert sorted((d["source_topic"], d["source_offset"], d["reason"], base64.b64decode(d["original"]))
                  for d in letters) == [("messages", 1, "malformed_json", bad[0]),
                                        ("messages", 2, "not_an_object", bad[1]),
                                        ("messages", 3, "missing_id", bad[2])]
