"""Delivery adapters against real servers on loopback: a webhook receiver and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from pathlib import Path

import orjson
import pytest

from streams.delivery import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ConsoleSender,
    SmtpSender,
    WebhookSender,
    attempt,
    delivery_record,
    sender_from_settings,
)
from streams.senders import verify
from streams.settings import Settings
from tests.loopback import SMTP_LOGIN, SMTP_PASSWORD, Inbox, Receiver, free_port

SECRET = "hmac-key-that-must-not-leak"
PASSWORD = SMTP_PASSWORD
MESSAGE = {"message_id": "msg-1", "trigger_id": "trg-1", "customer_id": "c1", "channel": "email",
           "template": "en/cart_abandoned.j2", "locale": "en", "subject": "You left something in your cart",
           "body": "Hello,\n\nYour cart is waiting.", "send_at": "2024-03-04T10:00:00Z", "trigger": "cart_abandoned"}
RAW = orjson.dumps(MESSAGE)


def test_webhook_posts_json_signed_over_timestamp_and_body(receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    handler.secret = SECRET.encode()  # the receiver verifies signature and timestamp as the README tells receivers
    outcome = attempt(WebhookSender(url, SECRET, clock=lambda: 1_700_000_000.7), MESSAGE, RAW, retries=3,
                      backoff=0.0)
    assert handler.statuses == [401], "a timestamp from 2023 is refused by a receiver with a 5-minute tolerance"
    assert (outcome.delivered, outcome.attempts, outcome.permanent) == (False, 1, True)
    ((headers, body),) = handler.received
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    expected = "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    assert verify(SECRET.encode(), body, "1700000000", expected, now=1_700_000_100)
    assert not verify(SECRET.encode(), body, "1700000001", expected, now=1_700_000_100), "timestamp is signed"
    assert not verify(SECRET.encode(), body, "1700000000", expected, now=1_700_000_301), "too old: a replay"

    outcome = attempt(WebhookSender(url, SECRET), MESSAGE, RAW, retries=3, backoff=0.0)
    assert (outcome.delivered, outcome.attempts, handler.statuses) == (True, 1, [401, 204])
    headers, body = handler.received[1]
    assert body == RAW and orjson.loads(body)["message_id"] == "msg-1"
    assert headers["Content-Type"] == "application/json" and headers["X-Journey-Message-Id"] == "msg-1"
    assert abs(int(headers[TIMESTAMP_HEADER]) - time.time()) < 60


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_permanent_failure_never_followed(receiver: tuple[str, type[Receiver]], status: int) -> None:
    url, handler = receiver
    handler.fail, handler.fail_status = 1, status
    outcome = attempt(WebhookSender(url, SECRET), MESSAGE, RAW, retries=5, backoff=0.0)
    port = url.split(":")[2].split("/")[0]
    assert (outcome.delivered, outcome.attempts, outcome.permanent) == (False, 1, True)
    assert outcome.detail == (f"HTTP {status} redirect to http://127.0.0.1:{port}/*** not followed "
                              "(a redirected POST loses its body)"), "the location's path and token are not shown"
    assert (handler.statuses, handler.gets) == ([status], []), "one POST, and no GET without the body"


def test_credentials_in_the_webhook_url_are_sent_as_basic_auth_and_never_logged(
        receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    handler.authorization = "Basic " + base64.b64encode(b"shop:p@ss word").decode()
    secret_url = url.replace("http://", "http://shop:p%40ss%20word@") + "?token=tok-not-for-logs"
    sender = WebhookSender(secret_url, None)
    outcome = attempt(sender, MESSAGE, RAW, retries=1, backoff=0.0)
    assert (outcome.delivered, handler.statuses) == (True, [204])
    assert handler.received[0][0]["Authorization"] == handler.authorization
    settings = Settings(webhook_url=secret_url)
    port = url.split(":")[2].split("/")[0]
    line = str(settings.describe()) + repr(settings) + repr(sender)
    assert settings.describe()["webhook_url"] == f"http://127.0.0.1:{port}/***"
    assert "p%40ss" not in line and "tok-not-for-logs" not in line and "shop" not in line
    with pytest.raises(ValueError, match="port that is not a number"):
        Settings(webhook_url="http://127.0.0.1:abc/hook")


def test_an_answer_worth_retrying_is_not_permanent(receiver: tuple[str, type[Receiver]]) -> None:
    url, handler = receiver
    for status, permanent in ((500, False), (503, False), (429, False), (408, False), (404, True), (400, True)):
        handler.received.clear()
        handler.fail, handler.fail_status = 1, status
        outcome = attempt(WebhookSender(url, None), MESSAGE, RAW, retries=1, backoff=0.0)
        assert (outcome.delivered, outcome.detail, outcome.permanent) == (False, f"HTTP {status}", permanent)


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
    # A 550 is permanent: one attempt, no retry (it was retried before, and counted as a passing outage).
    assert (outcome.delivered, outcome.attempts, outcome.detail, outcome.permanent, inbox.mails) == (
        False, 1, "SMTP 550", True, [])


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
