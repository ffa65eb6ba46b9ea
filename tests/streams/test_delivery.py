"""Delivery adapters against real servers on loopback: a webhook receiver and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import orjson
import pytest

from streams.delivery import (
    SIGNATURE_HEADER,
    ConsoleSender,
    SmtpSender,
    WebhookSender,
    attempt,
    delivery_record,
    sender_from_settings,
)
from streams.settings import Settings
from tests.loopback import SMTP_LOGIN, SMTP_PASSWORD, Inbox, Receiver, free_port

SECRET = "hmac-key-that-must-not-leak"
PASSWORD = SMTP_PASSWORD
MESSAGE = {"message_id": "msg-1", "trigger_id": "trg-1", "customer_id": "c1", "channel": "email",
           "template": "en/cart_abandoned.j2", "locale": "en", "subject": "You left something in your cart",
           "body": "Hello,\n\nYour cart is waiting.", "send_at": "2024-03-04T10:00:00Z", "trigger": "cart_abandoned"}
RAW = orjson.dumps(MESSAGE)


def test_webhook_posts_json_signed_with_hmac_sha256(receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    outcome = attempt(WebhookSender(url, SECRET), MESSAGE, RAW, retries=3, backoff=0.0)
    assert (outcome.delivered, outcome.attempts) == (True, 1)
    ((headers, body),) = handler.received
    assert body == RAW and orjson.loads(body)["message_id"] == "msg-1"
    assert headers["Content-Type"] == "application/json" and headers["X-Journey-Message-Id"] == "msg-1"
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)


def test_webhook_retries_with_exponential_backoff_then_delivers(receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    handler.fail = 2
    waits: list[float] = []
    outcome = attempt(WebhookSender(url, SECRET), MESSAGE, RAW, retries=5, backoff=0.25, sleep=waits.append)
    assert (outcome.delivered, outcome.attempts, waits) == (True, 3, [0.25, 0.5])
    assert len(handler.received) == 3


def test_webhook_dead_letters_after_the_last_retry_without_leaking_the_secret(
        receiver: tuple[str, type[Receiver]], caplog: pytest.LogCaptureFixture) -> None:
    url, handler = receiver
    handler.fail = 99
    waits: list[float] = []
    sender = WebhookSender(url, SECRET)
    with caplog.at_level(logging.DEBUG):
        outcome = attempt(sender, MESSAGE, RAW, retries=4, backoff=0.1, sleep=waits.append)
    assert (outcome.delivered, outcome.attempts, outcome.detail) == (False, 4, "HTTP 500")
    assert waits == [0.1, 0.2, 0.4]
    record = delivery_record(sender, MESSAGE, outcome)
    assert (record.status, record.attempts, record.detail, record.adapter) == ("dead_lettered", 4, "HTTP 500",
                                                                               "webhook")
    assert SECRET not in caplog.text and SECRET not in repr(sender)


def test_webhook_to_nothing_listening_is_a_failed_attempt() -> None:
    outcome = attempt(WebhookSender(f"http://127.0.0.1:{free_port()}/", None, timeout=2), MESSAGE, RAW, 2, 0.0)
    assert not outcome.delivered and outcome.detail.startswith("URLError")


def test_smtp_sends_the_email_to_a_real_server_with_login(smtp_server: tuple[int, Inbox],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    port, inbox = smtp_server
    sender = SmtpSender("127.0.0.1", port, "shop@example.com", "{customer_id}@customers.test", SMTP_LOGIN, PASSWORD)
    with caplog.at_level(logging.DEBUG):
        outcome = attempt(sender, MESSAGE, RAW, retries=2, backoff=0.0)
    assert outcome.delivered and outcome.attempts == 1
    (mail,) = inbox.mails
    assert mail.mail_from == "shop@example.com" and mail.rcpt_tos == ["c1@customers.test"]
    text = mail.content.decode()
    assert "Subject: You left something in your cart" in text and "Your cart is waiting." in text
    assert "X-Journey-Message-Id: msg-1" in text
    assert PASSWORD not in caplog.text


def test_smtp_refused_recipient_is_dead_lettered_with_the_reason(smtp_server: tuple[int, Inbox]) -> None:
    port, inbox = smtp_server
    sender = SmtpSender("127.0.0.1", port, "shop@example.com", "{customer_id}@nowhere.test", SMTP_LOGIN, PASSWORD)
    outcome = attempt(sender, MESSAGE, RAW, retries=2, backoff=0.0)
    assert (outcome.delivered, outcome.attempts, outcome.detail, inbox.mails) == (False, 2, "SMTPRecipientsRefused", [])


def test_console_sender_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    sender = ConsoleSender(path)
    sender.send(MESSAGE, RAW)
    sender.send(MESSAGE, RAW + b"\n")
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == [MESSAGE, MESSAGE]


def test_senders_from_settings_keep_secrets_secret() -> None:
    settings = Settings(webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRET, smtp_password=PASSWORD)
    assert SECRET not in repr(settings) and PASSWORD not in repr(settings)
    assert sender_from_settings(settings, "webhook").adapter == "webhook"
    assert sender_from_settings(settings, "smtp").channels == frozenset({"email"})
    assert isinstance(sender_from_settings(settings), ConsoleSender)
    with pytest.raises(ValueError, match="webhook_url"):
        sender_from_settings(Settings(), "webhook")
