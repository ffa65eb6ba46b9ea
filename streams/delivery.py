"""Delivery worker: ``messages`` in, each message handed to a webhook, an SMTP server or the console.

A :class:`DeliveryWorker` is a member of the consumer group ``<prefix>-deliver-<adapter>``. It
reads ``messages`` and its group's retry topic (streams/delivery_retry.py). For each message its
adapter handles (the webhook and the console take every channel, SMTP only e-mail):

1. **Ledger** (streams/delivery_ledger.py): a message id the adapter already delivered, in this
   run or an earlier one, by this worker or another, is not sent again (counted as a duplicate;
   its ``delivered`` record is written again, in case the worker that sent it died before it).
   Message ids derive from the trigger and the channel, so the same input gives the same ids.
2. **Erased**: a message to a customer erased since it was made (``journey privacy erase``: the
   customer's HMAC is on the suppression list, read from ``privacy-requests`` by
   streams/delivery_erased.py before each batch) is not sent, whether it comes from ``messages`` or
   was parked on the retry topic before the erasure: counted (``suppressed``), with no ``deliveries``
   record (it would write the erased id again).
3. **Age**: an external adapter (webhook, SMTP) does not send a message whose ``send_at`` is
   older than ``max_age`` (``delivery_max_age_seconds``) by the wall clock: a ``deliveries``
   record with status ``stale`` says so. The console adapter (a local log, what ``journey run``
   and its ``--replay`` of old history write) has no age limit.
4. **Attempts**: up to ``retries`` attempts with exponential backoff within the batch's time
   budget. Success: appended to the ledger, a ``delivered`` record. A permanent failure (a
   redirect, a 4xx but 408/425/429, a 5xx SMTP reply): a dead letter at once. Any other failure
   (down, timeout, 5xx, 429, the batch budget spent): the message is parked on the retry topic
   (a ``retrying`` record) and attempted again after a backoff, until the retry window since
   its first failure has passed; then it is a dead letter. Once a message of a batch ends parked,
   the rest of the batch gets one attempt each (the receiver is likely down: no inline retries).

A dead letter is a ``dead-letters`` record (reason ``delivery_failed``, the error, the original
bytes, the source partition and offset on ``messages``) and a ``deliveries`` record with status
``dead_lettered``; ``journey dead-letters redrive`` puts it back on ``messages``, and the ledger
keeps a redrive from sending anything twice. A record on ``messages`` that is not a message
(``schemas.triggers.MessageRecord``; only a foreign writer can put one there) is dead-lettered
with the reason the validation gives (``malformed_json``, ``missing_id``, ...) and skipped.

A batch has a time budget (``retry_budget``, the setting ``delivery_retry_budget_seconds``),
so a down or slow endpoint cannot hold the worker past the consumer's ``max.poll.interval.ms``:
no retry waits or starts past it (the message is parked), and no message is started past it
(the records not started are handed back to the consumer and come again at the next poll).
Offsets are committed once the outcomes and parked records are acknowledged and the ledger is
fsynced. Secrets (the HMAC key, the SMTP password, credentials in the webhook URL) never reach
a log line or an error detail.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import KafkaError, Message, TopicPartition

from plumbing.batch_worker import BatchWorker, consumer_config
from plumbing.produce import TrackingProducer
from processors.triggers.ids import derived_id
from schemas.registry import DEAD_LETTERS, DELIVERIES, MESSAGES
from schemas.triggers import Delivery
from schemas.validation import Rejected, dead_letter, validate_output
from streams.delivery_erased import ErasedCustomers
from streams.delivery_ledger import FileLedger, TopicLedger, ledger_path, ledger_topic
from streams.delivery_retry import Parked, ensure_retry_topic, park_delay, retry_topic
from streams.senders import (
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ConsoleSender,
    DeliveryError,
    Sender,
    SmtpSender,
    WebhookSender,
    redact_url,
    signature,
)

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["MESSAGE_ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "ConsoleSender", "DeliveryError",
           "DeliveryWorker", "Outcome", "SmtpSender", "WebhookSender", "attempt", "delivery_record", "redact_url",
           "sender_from_settings", "signature", "worker_from_settings"]

log = logging.getLogger(__name__)

BUDGET_SPENT = "retry budget of the batch spent"


@dataclass
class Outcome:
    delivered: bool
    attempts: int
    detail: str = ""
    permanent: bool = False  # trying again cannot help: dead-letter now


def attempt(sender: Sender, message: dict[str, Any], raw: bytes, retries: int, backoff: float,
            sleep: Callable[[float], None] = time.sleep, deadline: float | None = None,
            clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Up to ``retries`` attempts, waiting ``backoff * 2**(n-1)`` seconds after the n-th failure.

    A permanent failure stops at once. With a ``deadline`` (a ``clock`` reading), a retry whose
    wait would reach it is not made: the attempts stop there and the detail says the budget was spent.
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
            if exc.permanent:
                return Outcome(False, n, detail, permanent=True)
            if n < retries:
                wait = backoff * 2 ** (n - 1)
                if deadline is not None and clock() + wait >= deadline:
                    return Outcome(False, n, f"{detail} ({BUDGET_SPENT})")
                sleep(wait)
    return Outcome(False, retries, detail)


def delivery_record(sender: Sender, message: dict[str, Any], outcome: Outcome, status: str | None = None,
                    attempts: int | None = None) -> Delivery:
    """The ``deliveries`` record of one outcome (its id derives from the message and the adapter)."""
    return Delivery(
        delivery_id=derived_id("dlv", message["message_id"], sender.adapter), message_id=message["message_id"],
        trigger_id=message["trigger_id"], customer_id=message["customer_id"], trigger=message.get("trigger"),
        channel=message["channel"], adapter=sender.adapter,  # type: ignore[arg-type]
        status=status or ("delivered" if outcome.delivered else "dead_lettered"),  # type: ignore[arg-type]
        attempts=attempts or outcome.attempts, delivered_at=datetime.now(UTC), detail=outcome.detail[:1024])


class MemoryLedger:
    """A ledger kept in memory only (one worker, one process): what tests of other things use."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def delivered(self, message_id: str) -> bool:
        return message_id in self._ids

    def attempts(self, message_id: str) -> int:
        return self._ids.get(message_id, 1)

    def record(self, message_id: str, attempts: int = 1, partition: int | None = None) -> None:
        self._ids[message_id] = attempts

    def sync(self) -> None:
        pass


@dataclass
class DeliveryStats:
    consumed: int = 0
    #: Records read back from the retry topic and attempted again.
    retried: int = 0
    #: Last status per message handled: delivered, retrying (parked), dead_lettered, stale.
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Messages not sent because the ledger says this adapter delivered them already.
    duplicates: int = 0
    #: Sends made (every attempt, successful or not).
    attempts: int = 0
    #: Records handed back to the consumer, not started, because their batch's budget was spent.
    deferred: int = 0
    #: Dead letters produced, by reason (``delivery_failed``, or why a record is not a message).
    dead_letters: Counter[str] = field(default_factory=Counter)
    #: Messages not sent because their customer was erased (from ``messages`` or the retry topic).
    suppressed: int = 0


class DeliveryWorker(BatchWorker):
    """Sends the ``messages`` its adapter handles once each; parks and retries failures; records each outcome."""

    consume_eagerly = True  # a message goes out as soon as it is fetched (plumbing/batch_worker.py)

    def __init__(self, kafka_config: dict[str, str], group_id: str, sender: Sender, retries: int = 5,
                 backoff: float = 0.5, batch_rows: int = 500, sleep: Callable[[float], None] = time.sleep,
                 retry_budget: float = 120.0, clock: Callable[[], float] = time.monotonic,
                 ledger: FileLedger | TopicLedger | MemoryLedger | None = None, retry_window: float = 21600.0,
                 park_backoff: float = 5.0, park_backoff_max: float = 300.0, max_age: float | None = None,
                 wall: Callable[[], float] = time.time, erased: ErasedCustomers | None = None) -> None:
        self.retry_topic = retry_topic(group_id)
        super().__init__(consumer_config(kafka_config, group_id), [MESSAGES, self.retry_topic], batch_rows)
        self.sender, self.retries, self.backoff, self.sleep = sender, retries, backoff, sleep
        self.retry_budget, self.clock, self.wall = retry_budget, clock, wall
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.retry_window, self.park_backoff, self.park_backoff_max = retry_window, park_backoff, park_backoff_max
        self.max_age = max_age if sender.external else None
        self.stats = DeliveryStats()
        self.erased = erased
        self._kafka = kafka_config
        self._producer = TrackingProducer(kafka_config, **{"linger.ms": 5})
        self._positions: dict[tuple[str, int], int] = {}
        self._paused: dict[tuple[str, int], float] = {}  # retry partition -> wall time its head is due

    def start(self) -> None:
        ensure_retry_topic(self._kafka, self.retry_topic)
        if isinstance(self.ledger, TopicLedger):
            self.ledger.ensure()
        super().start()

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """A ledger on a topic: read what was delivered from these partitions before their records come."""
        if isinstance(self.ledger, TopicLedger):
            self.ledger.load(sorted({tp.partition for tp in partitions}))

    def run(self, stop: Any) -> DeliveryStats:  # type: ignore[override]
        super().run(stop)
        return self.stats

    def poll(self, timeout: float) -> int:
        self._resume_due()
        return super().poll(timeout)

    def flush_due(self) -> bool:
        return bool(self._positions)

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        super().on_revoke(partitions)
        for tp in partitions:
            self._paused.pop((tp.topic, tp.partition), None)

    def handle(self, messages: list[Message]) -> None:
        if self.erased is not None:
            self.erased.refresh()  # requests made up to now: no message of a customer erased before it goes out
        deadline = self.clock() + self.retry_budget
        started = outage = False
        blocked: set[tuple[str, int]] = set()  # retry partitions paused in this batch: skip their later records
        for n, msg in enumerate(messages):
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error().str())
                continue
            part = (msg.topic(), msg.partition())
            if part in blocked:
                continue
            if started and self.clock() >= deadline:
                self._hand_back([m for m in messages[n:] if (m.topic(), m.partition()) not in blocked])
                return
            parked = None
            if msg.topic() == self.retry_topic:
                parked = Parked.from_headers(msg.headers())
                if parked is not None and parked.not_before_ms > self.wall() * 1000:
                    self._pause(msg, parked.not_before_ms / 1000)
                    blocked.add(part)
                    continue
            started = True
            self._positions[part] = msg.offset() + 1
            outage = self._one(msg, parked, deadline, outage)

    def _one(self, msg: Message, parked: Parked | None, deadline: float, outage: bool) -> bool:
        """Handle one record; return whether the receiver looks down (a message ended parked)."""
        raw = msg.value() or b""
        if msg.topic() == self.retry_topic:
            if parked is None:  # not written by a delivery worker: dead-letter it as a record that is not ours
                self._dead_letter(msg.topic(), msg.partition(), msg.offset(), msg.key(), raw, "missing_field",
                                  "a retry record without the delivery headers")
                return outage
            self.stats.retried += 1
        else:
            self.stats.consumed += 1
            try:
                validate_output(MESSAGES, raw)
            except Rejected as rejected:  # written by our processor: only a foreign writer gets here
                self._dead_letter(MESSAGES, msg.partition(), msg.offset(), msg.key(), raw, rejected.reason,
                                  rejected.detail)
                return outage
        message = orjson.loads(raw)
        channels = self.sender.channels
        if channels is not None and message.get("channel") not in channels:
            return outage
        if self.erased is not None and self.erased.erased(message["customer_id"]):
            self.stats.suppressed += 1
            self.stats.outcomes["suppressed"] += 1
            return outage
        if self.ledger.delivered(message["message_id"]):
            # Not sent again. Its ``delivered`` record is written again (same id, same content but the time):
            # a worker killed between the send and that record's acknowledgement left it to this one.
            self.stats.duplicates += 1
            done = Outcome(True, 1, "delivered before (ledger): not sent again")
            self._producer.send(DELIVERIES, delivery_record(self.sender, message, done, "delivered",
                                                            self.ledger.attempts(message["message_id"])))
            return outage
        if self._stale(message):
            return outage
        outcome = attempt(self.sender, message, raw, 1 if outage else self.retries, self.backoff, self.sleep,
                          deadline, self.clock)
        self.stats.attempts += outcome.attempts
        attempts = outcome.attempts + (parked.attempts if parked else 0)
        if outcome.delivered:
            self.ledger.record(message["message_id"], attempts,
                               parked.source_partition if parked else msg.partition())
            self._record(message, outcome, "delivered", attempts)
            return outage
        now_ms = round(self.wall() * 1000)
        first_ms = parked.first_failed_ms if parked else now_ms
        source = (parked.source_partition, parked.source_offset) if parked else (msg.partition(), msg.offset())
        window_spent = now_ms - first_ms >= self.retry_window * 1000
        if outcome.permanent or window_spent:
            if window_spent and not outcome.permanent:
                outcome.detail += f" (retry window of {self.retry_window:g} s spent)"
            self._record(message, outcome, "dead_lettered", attempts)
            self._dead_letter(MESSAGES, *source, msg.key(), raw, "delivery_failed",
                              f"{self.sender.adapter}: {attempts} attempts, last: {outcome.detail}")
            return outage
        parks = (parked.attempts if parked else 0) + 1
        due_ms = now_ms + round(park_delay(parks, self.park_backoff, self.park_backoff_max) * 1000)
        again = Parked(attempts, first_ms, due_ms, *source)
        self._producer.send_raw(self.retry_topic, msg.key(), raw, again.headers())
        self._record(message, outcome, "retrying", attempts)
        return True

    def _stale(self, message: dict[str, Any]) -> bool:
        """Whether the message is too old to send now (then recorded ``stale``)."""
        if self.max_age is None:
            return False
        send_at = datetime.fromisoformat(message["send_at"]).timestamp()
        age = self.wall() - send_at
        if age <= self.max_age:
            return False
        detail = f"send_at is {age / 3600:.1f} h old, past delivery_max_age_seconds ({self.max_age:g} s): not sent"
        self._record(message, Outcome(False, 1, detail), "stale", 1)
        return True

    def _record(self, message: dict[str, Any], outcome: Outcome, status: str, attempts: int) -> None:
        self._producer.send(DELIVERIES, delivery_record(self.sender, message, outcome, status, attempts))
        self.stats.outcomes[status] += 1

    def _dead_letter(self, topic: str, partition: int, offset: int, key: bytes | None, raw: bytes, reason: str,
                     detail: str) -> None:
        letter = dead_letter(topic, partition, offset, key, raw, reason, detail, datetime.now(UTC))
        self._producer.send(DEAD_LETTERS, letter, key=letter.dead_letter_id)
        self.stats.dead_letters[reason] += 1

    def _pause(self, msg: Message, due: float) -> None:
        """Hold a retry partition at its first record not yet due, until ``due`` (wall-clock seconds)."""
        assert self._consumer is not None, "records come from the consumer"
        tp = TopicPartition(msg.topic(), msg.partition(), msg.offset())
        self._consumer.pause([tp])
        self._consumer.seek(tp)
        self._paused[(msg.topic(), msg.partition())] = due

    def _resume_due(self) -> None:
        if not self._paused or self._consumer is None:
            return
        now = self.wall()
        due = [part for part, at in self._paused.items() if at <= now]
        if due:
            self._consumer.resume([TopicPartition(t, p) for t, p in due])
            for part in due:
                del self._paused[part]

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

    def close(self) -> None:
        super().close()
        if self.erased is not None:
            self.erased.close()

    def flush(self) -> None:
        """Ledger fsynced, outcomes and parked records acknowledged, then offsets committed."""
        if not self._positions:
            return
        self.ledger.sync()
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


def worker_from_settings(settings: Settings, sender: Sender) -> DeliveryWorker:
    """The delivery worker of ``sender``'s group, with the ledger in the data directory and the retry settings."""
    group = settings.group_id(f"deliver-{sender.adapter}")
    return DeliveryWorker(settings.kafka_config(), group, sender, settings.delivery_retries,
                          settings.delivery_backoff_seconds, retry_budget=settings.delivery_retry_budget_seconds,
                          ledger=TopicLedger(settings.kafka_config(), ledger_topic(group))
                          if settings.delivery_ledger == "topic" else FileLedger(ledger_path(settings.data_dir, group)),
                          retry_window=settings.delivery_retry_window_seconds,
                          park_backoff=settings.delivery_backoff_seconds,
                          park_backoff_max=settings.delivery_retry_max_backoff_seconds,
                          max_age=settings.delivery_max_age_seconds or None,
                          erased=ErasedCustomers(settings.kafka_config(), settings.pseudonymizer()))
