"""Delivery adapters: ``messages`` in, each message handed to a webhook, an SMTP server or the console.

A :class:`DeliveryWorker` is a member of the consumer group ``<prefix>-deliver-<adapter>``.
Per batch it sends every message its adapter handles (the webhook and the console take
every channel, SMTP only e-mail), retrying a failure with exponential backoff
(``backoff``, ``2 * backoff``, ...). After the last attempt the message is dead-lettered:
a ``dead-letters`` record (reason ``delivery_failed``, the error, the original bytes) and a
``deliveries`` record with status ``dead_lettered``. A record on ``messages`` that is not a
message (``schemas.triggers.MessageRecord``; only a foreign writer can put one there) is
dead-lettered with the reason the validation gives (``malformed_json``, ``missing_id``, ...)
and skipped: bad input never stops the worker.

A batch has a time budget (``retry_budget``, the setting ``delivery_retry_budget_seconds``),
so a down or slow endpoint cannot hold the worker past the consumer's ``max.poll.interval.ms``
(300 s by default; a member that exceeds it is evicted and its batch re-sent by another):

- no retry waits or starts past the budget: a message whose next retry would is dead-lettered
  then, as after its last retry (the detail says the budget was spent);
- no message is started past the budget: the records not started are handed back to the
  consumer (a seek to the first of each partition) and come again at the next poll, with a
  fresh budget. The first message of a batch always starts, so the worker always moves on.

A batch thus ends at most one send timeout after its budget. Each outcome is a ``deliveries``
record whose id derives from the message and the adapter; offsets are committed once
they are acknowledged, so a crash re-sends at most one batch (at least once; receivers
deduplicate by ``message_id``, which the webhook sends as a header).

Secrets (the HMAC key, the SMTP password) live in ``SecretStr`` settings and never reach a
log line or an error detail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson
from confluent_kafka import KafkaError, Message, TopicPartition

from processors.triggers.ids import derived_id
from schemas.triggers import Delivery
from schemas.validation import Rejected, dead_letter, validate_output
from streams.batch_worker import BatchWorker, consumer_config
from streams.produce import TrackingProducer
from streams.topics import DEAD_LETTERS

if TYPE_CHECKING:
    from streams.settings import Settings

log = logging.getLogger(__name__)

MESSAGES = "messages"
DELIVERIES = "deliveries"
SIGNATURE_HEADER = "X-Journey-Signature"


class DeliveryError(RuntimeError):
    """One attempt failed; the text is safe to store (no secret, no message body)."""


class Sender(Protocol):
    adapter: str
    channels: frozenset[str] | None  # None: every channel

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        """Deliver one message or raise :class:`DeliveryError`."""


class ConsoleSender:
    """The embedded default: each message as one JSON line on stdout, or appended to a file."""

    adapter = "console"
    channels = None

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._out: IO[bytes] | None = None

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        if self._out is None:
            self._out = self.path.open("ab") if self.path else sys.stdout.buffer
        self._out.write(raw.rstrip() + b"\n")
        self._out.flush()


def signature(secret: bytes, body: bytes) -> str:
    """The webhook signature header value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSender:
    """JSON POST of the message, signed with HMAC-SHA256 over the exact body bytes."""

    adapter = "webhook"
    channels = None

    def __init__(self, url: str, secret: str | None, timeout: float = 5.0) -> None:
        self.url = url
        self._secret = secret.encode() if secret else None
        self.timeout = timeout

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Journey-Message-Id": message["message_id"]}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, raw)
        request = urllib.request.Request(self.url, data=raw, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{type(exc).__name__}: {type(reason).__name__}") from None


class SmtpSender:
    """E-mail messages through an SMTP server (STARTTLS and login when configured)."""

    adapter = "smtp"
    channels = frozenset({"email"})

    def __init__(self, host: str, port: int, sender: str, recipient: str = "{customer_id}@customers.invalid",
                 username: str | None = None, password: str | None = None, starttls: bool = False,
                 timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.recipient = host, port, sender, recipient
        self.username, self._password, self.starttls, self.timeout = username, password, starttls, timeout

    def email(self, message: dict[str, Any]) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = self.recipient.format(customer_id=message["customer_id"])
        mail["Subject"] = message.get("subject") or ""
        mail["X-Journey-Message-Id"] = message["message_id"]
        mail.set_content(message["body"])
        return mail

    def send(self, message: dict[str, Any], raw: bytes) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(self.email(message))
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(type(exc).__name__) from None


BUDGET_SPENT = "retry budget of the batch spent"


@dataclass
class Outcome:
    delivered: bool
    attempts: int
    detail: str = ""


def attempt(sender: Sender, message: dict[str, Any], raw: bytes, retries: int, backoff: float,
            sleep: Callable[[float], None] = time.sleep, deadline: float | None = None,
            clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Up to ``retries`` attempts, waiting ``backoff * 2**(n-1)`` seconds after the n-th failure.

    With a ``deadline`` (a ``clock`` reading), a retry whose wait would reach it is not made: the
    attempts stop there and the detail says the budget was spent.
    """
    detail = ""
    for n in range(1, retries + 1):
        try:
            sender.send(message, raw)
            return Outcome(True, n)
        except DeliveryError as exc:
            detail = str(exc)
            log.warning("%s delivery of %s failed (attempt %d/%d): %s", sender.adapter, message["message_id"], n,
                        retries, detail)
            if n < retries:
                wait = backoff * 2 ** (n - 1)
                if deadline is not None and clock() + wait >= deadline:
                    return Outcome(False, n, f"{detail} ({BUDGET_SPENT})")
                sleep(wait)
    return Outcome(False, retries, detail)


def delivery_record(sender: Sender, message: dict[str, Any], outcome: Outcome) -> Delivery:
    return Delivery(
        delivery_id=derived_id("dlv", message["message_id"], sender.adapter), message_id=message["message_id"],
        trigger_id=message["trigger_id"], customer_id=message["customer_id"], trigger=message.get("trigger"),
        channel=message["channel"], adapter=sender.adapter,  # type: ignore[arg-type]
        status="delivered" if outcome.delivered else "dead_lettered", attempts=outcome.attempts,
        delivered_at=datetime.now(UTC), detail=outcome.detail)


@dataclass
class DeliveryStats:
    consumed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Records handed back to the consumer, not started, because their batch's budget was spent.
    deferred: int = 0
    #: Dead letters produced, by reason (``delivery_failed``, or why a record is not a message).
    dead_letters: Counter[str] = field(default_factory=Counter)


class DeliveryWorker(BatchWorker):
    """Sends the ``messages`` its adapter handles; records each outcome on ``deliveries``."""

    consume_eagerly = True  # a message goes out as soon as it is fetched (streams/batch_worker.py)

    def __init__(self, kafka_config: dict[str, str], group_id: str, sender: Sender, retries: int = 5,
                 backoff: float = 0.5, batch_rows: int = 500, sleep: Callable[[float], None] = time.sleep,
                 retry_budget: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(consumer_config(kafka_config, group_id), [MESSAGES], batch_rows)
        self.sender, self.retries, self.backoff, self.sleep = sender, retries, backoff, sleep
        self.retry_budget, self.clock = retry_budget, clock
        self.stats = DeliveryStats()
        self._producer = TrackingProducer(kafka_config, **{"linger.ms": 5})
        self._positions: dict[tuple[str, int], int] = {}

    def run(self, stop: Any) -> DeliveryStats:  # type: ignore[override]
        super().run(stop)
        return self.stats

    def flush_due(self) -> bool:
        return bool(self._positions)

    def handle(self, messages: list[Message]) -> None:
        deadline = self.clock() + self.retry_budget
        started = False
        for n, msg in enumerate(messages):
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error().str())
                continue
            if started and self.clock() >= deadline:
                self._hand_back(messages[n:])
                return
            started = True
            self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            self.stats.consumed += 1
            raw = msg.value() or b""
            try:
                validate_output(MESSAGES, raw)
            except Rejected as rejected:  # written by our processor: only a foreign writer gets here
                self._dead_letter(msg, raw, rejected.reason, rejected.detail)
                continue
            message = orjson.loads(raw)
            channels = self.sender.channels
            if channels is not None and message.get("channel") not in channels:
                continue
            outcome = attempt(self.sender, message, raw, self.retries, self.backoff, self.sleep, deadline, self.clock)
            record = delivery_record(self.sender, message, outcome)
            self._producer.send(DELIVERIES, record)
            self.stats.outcomes[record.status] += 1
            if not outcome.delivered:
                self._dead_letter(msg, raw, "delivery_failed",
                                  f"{self.sender.adapter}: {outcome.attempts} attempts, last: {outcome.detail}")

    def _dead_letter(self, msg: Message, raw: bytes, reason: str, detail: str) -> None:
        letter = dead_letter(MESSAGES, msg.partition(), msg.offset(), msg.key(), raw, reason, detail,
                             datetime.now(UTC))
        self._producer.send(DEAD_LETTERS, letter, key=letter.dead_letter_id)
        self.stats.dead_letters[reason] += 1

    def _hand_back(self, rest: list[Message]) -> None:
        """Seek each partition back to its first record not started: the next poll takes them again."""
        first: dict[tuple[str, int], int] = {}
        for msg in rest:
            if msg.error() is None:
                first.setdefault((msg.topic(), msg.partition()), msg.offset())
        assert self._consumer is not None, "records come from the consumer"
        for (topic, partition), offset in first.items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
        deferred = sum(1 for msg in rest if msg.error() is None)
        self.stats.deferred += deferred
        log.warning("%s delivery: batch budget of %.0f s spent, %d message(s) left for the next poll",
                    self.sender.adapter, self.retry_budget, deferred)

    def flush(self) -> None:
        """Outcomes acknowledged, then offsets committed."""
        if not self._positions:
            return
        self._producer.flush()
        self.commit([TopicPartition(t, p, o) for (t, p), o in self._positions.items()])
        self._positions = {}


def sender_from_settings(settings: Settings, adapter: str | None = None) -> Sender:
    """The adapter named (or ``delivery_adapter``), configured from the settings; secrets stay unlogged."""
    name = adapter or settings.delivery_adapter
    if name == "console":
        return ConsoleSender(settings.delivery_file)
    if name == "webhook":
        if not settings.webhook_url:
            raise ValueError("the webhook adapter needs webhook_url (JOURNEY_WEBHOOK_URL)")
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        return WebhookSender(settings.webhook_url, secret, settings.webhook_timeout_seconds)
    if name == "smtp":
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpSender(settings.smtp_host, settings.smtp_port, settings.smtp_sender, settings.smtp_recipient,
                          settings.smtp_username, password, settings.smtp_starttls)
    raise ValueError(f"unknown adapter {name!r} (console, webhook or smtp)")
