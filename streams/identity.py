"""The identity stage: input topics in, each event resolved to its canonical profile and re-keyed out.

It reads ``clickstream``, ``orders``, ``chat`` and ``consent``, resolves each valid event's subject
through the identity graph (processors/identity/) and writes it to ``identified-<topic>`` keyed by the
profile id, with ``customer_id`` set to it (``anonymous_id`` and the other identifiers kept) and, when
that is another subject than the event's own, ``resolved_from`` set to the event's own (the features
worker checks lateness per origin: each subject's events are in event-time order on its own input
partition, not interleaved with the profile's); ``resolved_from`` on an input event is removed. The
features worker reads those topics. ``identify`` and ``alias`` events change the graph only. Every
link, merge and refused link goes to ``identity-merges`` (keyed by ``from_id``): the sink stores it in
``identity_merges`` and the features worker folds a merged profile into the survivor. Invalid records
are skipped: the sink dead-letters them.

State: the graph's components, one record per component on the compacted changelog
``<prefix>-identity-changelog`` (partition 0; a merged-away component is a tombstone), restored at
start. Given a pseudonymizer it also reads ``privacy-requests``: an ``erase`` drops the components
holding an id whose HMAC is the request's subject (tombstones on the changelog, a ``privacy-audit``
record) and is committed after them, like the stateful workers' requests (streams/erasure.py); the
records already on ``identity-merges`` stay until their retention. Commit protocol per flush (every
``flush_seconds``): every produced record acknowledged, then the changed components to the changelog
(acknowledged), then the input offsets committed. After a crash the records after the last commit are
read again, with the graph restored from the changelog: as of the last flush, or (a crash between the
changelog and the commit) already past them, with every record they produced delivered. Resolved
again, an event goes to the same profile, or, if its subject's profile was merged since, to that
retired profile (``Resolution.via``), which drops it as one it already counted and handed over; the
features processor skips other repeats by event id, and the audit records have ids derived from the
event (a link made again makes no record: it is there).

Not partitioned yet: the graph is global, so one identity worker consumes every input partition (a
second member of the group would resolve with a graph that misses the first one's links).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition
from pydantic import ValidationError

from plumbing.batch_worker import BatchWorker, consumer_config
from plumbing.produce import CLIENT_LOGGER, PARTITIONER
from plumbing.waiting import flush_following
from processors.identity.graph import Component, IdentityGraph, IdentityRecord, Sighting
from processors.identity.rules import LinkRules
from schemas.base import EXTRA_IDENTIFIERS, LINKING_TYPES, SCHEMA_VERSION
from schemas.identity import identified
from schemas.privacy import PrivacyAudit, PrivacyRequest
from schemas.registry import IDENTITY_MERGES, INPUT_TOPICS, PRIVACY_AUDIT, PRIVACY_REQUESTS
from schemas.validation import Limits, Rejected, validate
from streams.pseudonym import Pseudonymizer
from streams.topics import ensure_compacted

log = logging.getLogger(__name__)
CHANGELOG_PARTITION = 0


@dataclass
class IdentityStats:
    consumed: int = 0
    consumed_by_topic: Counter[str] = field(default_factory=Counter)  # read by the metrics endpoint
    resolved: int = 0  # events written to identified-* topics
    rekeyed: int = 0  # of which to a profile other than their own customer_id
    links: int = 0  # identify and alias events (not forwarded)
    invalid: int = 0  # skipped (the sink dead-letters them)
    records: Counter[str] = field(default_factory=Counter)  # identity-merges records per action
    restored_components: int = 0
    erased_components: int = 0  # dropped by privacy erase requests


def sighting_of(event: Any, t_ms: int) -> Sighting:
    """What the graph reads of a validated event: an event whose customer_id is its anonymous_id is anonymous."""
    anonymous = event.anonymous_id
    customer = None if anonymous is not None and event.customer_id == anonymous else event.customer_id
    identifiers = {kind: value for kind in EXTRA_IDENTIFIERS if (value := getattr(event, kind, None)) is not None}
    return Sighting(event.event_id, t_ms, event.type, customer, anonymous, identifiers,
                    getattr(event, "previous_id", None))


def resolved_value(value: bytes, subject: str, claimed: str | None, profile: str) -> bytes:
    """The ``identified-*`` value of an input event of ``subject`` resolved to ``profile``.

    Re-keyed (``profile`` is another subject): ``customer_id`` is the profile and ``resolved_from`` the
    subject, its origin (the features worker checks lateness per origin). Otherwise the event as it came,
    less a ``resolved_from`` it ``claimed``: only the stage says where an event came from.
    """
    if profile == subject and claimed is None:
        return value
    body = orjson.loads(value)
    body["customer_id"] = profile
    if profile == subject:
        del body["resolved_from"]
    else:
        body["resolved_from"] = subject
    return orjson.dumps(body)


def record_value(record: IdentityRecord) -> bytes:
    """The ``identity-merges`` value of a record (``schemas.identity.IdentityMerge``)."""
    when = datetime.fromtimestamp(record.event_time_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    body = {"record_id": record.record_id, "action": record.action, "reason": record.reason,
            "from_kind": record.from_kind, "from_id": record.from_id, "into_id": record.into_id,
            "event_id": record.event_id, "event_time": when, "schema_version": SCHEMA_VERSION}
    return orjson.dumps(body)


def read_components(kafka: dict[str, str], changelog: str) -> dict[str, Component]:
    """The graph's components as the changelog holds them (the newest record per root; tombstone: gone)."""
    reader = Consumer({**kafka, "group.id": f"{changelog}-restore", "enable.auto.commit": False,
                       "enable.partition.eof": True, "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10})
    reader.assign([TopicPartition(changelog, CHANGELOG_PARTITION, OFFSET_BEGINNING)])
    components: dict[str, Component] = {}
    try:
        done = False
        while not done:
            for msg in reader.consume(10_000, 0.1):
                if msg.error() is not None:
                    if msg.error().code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                        raise RuntimeError(f"reading {changelog}: {msg.error().str()}")
                    done = True  # at its end (or no changelog yet: no component)
                elif msg.value() is None:
                    components.pop(msg.key().decode(), None)
                else:
                    components[msg.key().decode()] = Component(**orjson.loads(msg.value()))
    finally:
        reader.close()
    return components


class IdentityWorker(BatchWorker):
    """The identity stage's group member (run one: see the module docstring)."""

    def __init__(self, kafka_config: dict[str, str], group_id: str, changelog: str, rules: LinkRules | None = None,
                 limits: Limits | None = None, batch_rows: int = 10_000, flush_seconds: float = 1.0,
                 pseudonymizer: Pseudonymizer | None = None) -> None:
        topics = [*INPUT_TOPICS, PRIVACY_REQUESTS] if pseudonymizer is not None else list(INPUT_TOPICS)
        super().__init__(consumer_config(kafka_config, group_id), topics, batch_rows)
        self.pseudonymizer = pseudonymizer
        self.graph = IdentityGraph(rules)
        self.limits = limits or Limits()
        self.changelog = changelog
        self.flush_seconds = flush_seconds
        self.stats = IdentityStats()
        self._kafka = kafka_config
        self._producer = Producer({**kafka_config, "partitioner": PARTITIONER, "logger": CLIENT_LOGGER,
                                   "linger.ms": 5, "queue.buffering.max.messages": 1_000_000,
                                   "enable.idempotence": False})
        self._positions: dict[tuple[str, int], int] = {}
        self._changed: set[str] = set()
        self._retired: set[str] = set()
        self._errors: list[str] = []
        self._last_flush = time.monotonic()

    def start(self) -> None:
        """Create the changelog if missing, restore the graph from it, then join the group."""
        ensure_compacted(self._kafka, self.changelog, self.topics[0])
        self._restore()
        super().start()

    def _restore(self) -> None:
        components = read_components(self._kafka, self.changelog)
        for component in components.values():
            self.graph.load(component)
        self.stats.restored_components = len(components)
        log.info("restored %d identity components from %s", len(components), self.changelog)

    def flush_due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.flush_seconds

    def handle(self, messages: list[Message]) -> None:
        for msg in messages:
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error().str())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            self.stats.consumed += 1
            self.stats.consumed_by_topic[topic] += 1
            self._positions[(topic, partition)] = offset + 1
            if topic == PRIVACY_REQUESTS:
                self._erase(msg.value())
            else:
                self._resolve(topic, msg.value(), msg.key())

    def _erase(self, value: bytes | None) -> None:
        """Apply an ``erase`` request: drop every component holding an id whose HMAC is its subject.

        The tombstones go to the changelog at the next flush, before the request's offset is committed
        (a crash redoes it); then the ``privacy-audit`` record says what was dropped.
        """
        assert self.pseudonymizer is not None
        try:
            request = PrivacyRequest.model_validate_json(value or b"")
        except ValidationError:
            log.warning("a privacy-requests record is not a privacy request: skipped")
            return
        if request.kind != "erase":
            return
        subject, hashed = request.subject, self.pseudonymizer.subject
        roots = self.graph.erase(lambda value: hashed(value) == subject)
        self._retired |= set(roots)
        self._changed -= set(roots)
        self.stats.erased_components += len(roots)
        audit = PrivacyAudit(request_id=request.request_id, subject=subject, action="erase", location="identity",
                             rows=len(roots), detail=f"identity graph components dropped and tombstoned: {len(roots)}",
                             completed_at=datetime.now(UTC))
        self._produce(PRIVACY_AUDIT, subject.encode(), audit.__pydantic_serializer__.to_json(audit))

    def _resolve(self, topic: str, value: bytes | None, key: bytes | None) -> None:
        try:
            event = validate(topic, value, key, self.limits)
        except Rejected:
            self.stats.invalid += 1
            return
        assert value is not None
        res = self.graph.resolve(sighting_of(event, round(event.event_time.timestamp() * 1000)))
        self._changed |= res.changed
        self._retired |= res.retired
        self._changed -= res.retired
        for record in res.records:
            self._produce(IDENTITY_MERGES, record.from_id.encode(), record_value(record))
            self.stats.records[record.action] += 1
        if event.type in LINKING_TYPES:
            self.stats.links += 1
            return
        target = res.via or res.profile  # a retired profile's own events go through it (graph.Resolution.via)
        if target != event.customer_id:
            self.stats.rekeyed += 1
        value = resolved_value(value, event.customer_id, event.resolved_from, target)
        self._produce(identified(topic), target.encode(), value)
        self.stats.resolved += 1

    def _produce(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value, key, on_delivery=self._delivered)
                else:
                    self._producer.produce(topic, value, key, partition=partition, on_delivery=self._delivered)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def flush(self) -> None:
        """Every output acknowledged, then the changed components to the changelog (acknowledged), then the input
        offsets committed: the graph on the changelog is never ahead of outputs that were lost."""
        remaining = flush_following(self._producer)
        if remaining or self._errors:
            raise RuntimeError(f"identity outputs not acknowledged ({remaining} pending, errors: {self._errors[:3]});"
                               " the graph and offsets not stored")
        for root in sorted(self._retired):
            self._produce(self.changelog, root.encode(), None, CHANGELOG_PARTITION)
        for root in sorted(self._changed):
            component = self.graph.components.get(root)
            if component is not None:
                self._produce(self.changelog, root.encode(), orjson.dumps(asdict(component)), CHANGELOG_PARTITION)
        self._changed.clear()
        self._retired.clear()
        remaining = flush_following(self._producer)
        if remaining or self._errors:
            raise RuntimeError(f"identity outputs not acknowledged ({remaining} pending, errors: {self._errors[:3]});"
                               " offsets not committed")
        if self._positions:
            self.commit([TopicPartition(t, p, o) for (t, p), o in self._positions.items()])
            self._positions = {}
        self._last_flush = time.monotonic()
