"""``journey privacy``: send data-rights requests, wait until the processors applied them, read what they hold.

A request goes to ``privacy-requests`` on the partition of the customer's events (Kafka's
partitioner over the clear id), keyed by the subject (HMAC): the id never travels. It is
applied by a processor when that processor's consumer group has committed past it, which its
worker does only after the tombstones are acknowledged (streams/stateful.py): that is what
:func:`wait_applied` watches. A group that is not running applies it the next time it runs,
before any input record (streams/erasure.py).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from plumbing.partitioner import partition_for
from plumbing.produce import CLIENT_LOGGER
from plumbing.restore import end_reader, read_until_end
from schemas.privacy import PrivacyRequest
from schemas.registry import PRIVACY_REQUESTS
from streams.host.contract import plain, restore
from streams.progress import GroupProgress, end_offsets_by_eof
from streams.settings import Settings


def send_request(kafka: dict[str, str], partitions: int, customer_id: str, subject: str, kind: str = "erase",
                 request_id: str | None = None) -> tuple[str, list[tuple[int, int]]]:
    """Produce one request; its id and the (partition, offset) it landed at (``suppress``: every partition)."""
    request = PrivacyRequest(request_id=request_id or f"pr-{uuid.uuid4().hex}", subject=subject,
                             kind=kind, requested_at=datetime.now(UTC))  # type: ignore[arg-type]
    value = request.__pydantic_serializer__.to_json(request)
    targets = range(partitions) if kind == "suppress" else [partition_for(customer_id.encode(), partitions)]
    landed: list[tuple[int, int]] = []
    errors: list[str] = []

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            errors.append(err.str())
        else:
            landed.append((msg.partition(), msg.offset()))

    producer = Producer({**kafka, "logger": CLIENT_LOGGER, "enable.idempotence": False})
    for partition in targets:
        producer.produce(PRIVACY_REQUESTS, value, subject.encode(), partition=partition, on_delivery=delivered)
    producer.flush(30)
    if errors or len(landed) != len(targets):
        raise RuntimeError(f"privacy request not acknowledged: {errors[:1] or 'timeout'}")
    return request.request_id, landed


def send_suppressions(kafka: dict[str, str], partitions: int, subjects: list[str]) -> int:
    """Hand the suppression list to the processors of a fresh broker (``suppress`` on every partition)."""
    for subject in subjects:
        send_request(kafka, partitions, "", subject, "suppress")
    return len(subjects)


def committed_past(kafka: dict[str, str], group: str, partition: int, offset: int) -> bool | None:
    """Whether ``group`` committed past ``offset`` on ``privacy-requests[partition]`` (None: it never committed)."""
    consumer = Consumer({**kafka, "group.id": group, "enable.auto.commit": False, "logger": CLIENT_LOGGER})
    try:
        (tp,) = consumer.committed([TopicPartition(PRIVACY_REQUESTS, partition)], timeout=10)
    finally:
        consumer.close()
    return None if tp.offset < 0 else tp.offset > offset


def wait_applied(kafka: dict[str, str], groups: dict[str, str], partition: int, offset: int,
                 timeout: float) -> dict[str, str]:
    """Per processor: ``applied``, or ``pending`` (it applies the request the next time it runs)."""
    deadline = time.monotonic() + timeout
    status = {name: "pending" for name in groups}
    while True:
        for name, group in groups.items():
            if status[name] != "applied" and committed_past(kafka, group, partition, offset):
                status[name] = "applied"
        if all(s == "applied" for s in status.values()) or time.monotonic() >= deadline:
            return status
        time.sleep(0.5)


def processor_states(kafka: dict[str, str], changelogs: dict[str, str], customer_id: str,
                     partitions: int) -> dict[str, Any]:
    """What each processor holds about ``customer_id``: its state as restored from its changelog (absent: none)."""
    partition = partition_for(customer_id.encode(), partitions)
    held: dict[str, Any] = {}
    for name, topic in changelogs.items():
        latest = _latest(kafka, topic, partition, customer_id.encode())
        if latest is not None:
            held[name] = plain(restore(latest).state)  # the contract's default export of a state
    return held


def _latest(kafka: dict[str, str], topic: str, partition: int, key: bytes) -> bytes | None:
    """The newest value of ``key`` in ``topic[partition]`` (None: none, or no such topic: no worker ran yet)."""
    reader = end_reader(kafka, f"{topic}-export")
    latest: bytes | None = None

    def take(msg: Message) -> None:
        nonlocal latest
        if msg.key() == key:
            latest = msg.value()

    try:
        read_until_end(reader, [TopicPartition(topic, partition, OFFSET_BEGINNING)], take, timeout=1.0,
                       errors="skip", end_codes=(KafkaError.UNKNOWN_TOPIC_OR_PART,))
    finally:
        reader.close()
    return latest


def identity_components(kafka: dict[str, str], changelog: str, ids: set[str]) -> list[dict[str, Any]]:
    """The identity graph's components (as its changelog holds them) with one of ``ids`` as profile or member value."""
    from streams.identity import read_components

    found = [dataclasses.asdict(c) for c in read_components(kafka, changelog).values()]
    return [c for c in found if c["profile"] in ids or any(m.partition(":")[2] in ids for m in c["members"])]


def _linked(settings: Settings, reader: Any, broker: tuple[dict[str, str], int] | None,
            customer_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The ids linked to ``customer_id`` (identity_merges, and the identity graph when a broker runs) and its
    graph components."""
    from sinks.privacy import linked_ids
    from streams.topics import identity_changelog

    ids = set(linked_ids(reader, customer_id))
    components = ([] if broker is None else
                  identity_components(broker[0], identity_changelog(settings.group_prefix), {customer_id, *ids}))
    ids.update(m.partition(":")[2] for c in components for m in c["members"])
    return sorted(ids - {customer_id}), components


def _broker(settings: Settings) -> tuple[dict[str, str], int] | None:
    """Kafka settings and partition count of the running pipeline (or the configured Kafka); None: none runs."""
    from streams.runfile import running

    live = running(settings.data_dir)
    if live is not None:
        return settings.kafka_config(str(live["bootstrap"])), int(live["partitions"])  # type: ignore[call-overload]
    if not settings.embedded_broker:
        return settings.kafka_config(), settings.topic_partitions
    return None


def sink_caught_up(kafka: dict[str, str], group: str, timeout: float) -> bool:
    """Wait until the sink group has stored every record now on the topics it reads (False: not within timeout)."""
    from confluent_kafka.admin import AdminClient

    from sinks.ingest import SinkConfig

    deadline = time.monotonic() + timeout
    existing = set(AdminClient({**kafka, "logger": CLIENT_LOGGER}).list_topics(timeout=10).topics)
    ends = end_offsets_by_eof(kafka, [t for t in SinkConfig(group).topics if t in existing], from_watermark=True)
    progress = GroupProgress(kafka, group)
    try:
        while progress.remaining(ends):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True
    finally:
        progress.close()


def erase_customers(settings: Settings, customer_ids: list[str]) -> list[dict[str, Any]]:
    """Erase each of ``customer_ids`` (one report each): ClickHouse at once, in one pass for all of them
    (:func:`sinks.privacy.erase_many`); processors through one ``privacy-requests`` record each (waited for).

    With a pipeline running, records about the customers may still be on their way to ClickHouse
    (events the sink has not stored yet, outputs made before a processor applied the request):
    once the processors applied it and the sink caught up, a second pass deletes those.
    """
    from sinks.privacy import Erasure, erase_many
    from streams.query import reader

    pseudonymizer = settings.pseudonymizer()
    broker = _broker(settings)
    linked_to: dict[str, str] = {}  # a linked id -> the subject of the customer it was erased with
    with reader(settings) as r:
        for customer in dict.fromkeys(customer_ids):
            for linked in _linked(settings, r, broker, customer)[0]:
                linked_to.setdefault(linked, pseudonymizer.subject(customer))
        wanted = dict.fromkeys([*customer_ids, *sorted(set(linked_to) - set(customer_ids))])
        requests = [Erasure(c, pseudonymizer.subject(c)) for c in wanted]
        deleted = erase_many(r, requests)
    reports: list[dict[str, Any]] = [{"request_id": q.request_id, "subject": q.subject,
                                      "clickhouse_rows_deleted": deleted[q.customer_id]}
                                     | ({"linked_to": linked_to[q.customer_id]} if q.customer_id in linked_to else {})
                                     for q in requests]
    if broker is not None:
        try:
            _apply_running(settings, broker, requests, reports)
            return reports
        except (KafkaException, RuntimeError):  # RuntimeError: ClickHouseUnavailable among others
            if not settings.embedded_broker or not _run_ended(settings.data_dir, timeout=60.0):
                raise
            # The embedded run ended while we waited or swept: its broker, and every processor state, went
            # with it, and its sink no longer answers for the database (the sweep below opens it directly).
    for report in reports:
        report["processors"] = ("no pipeline runs: the embedded broker keeps no state between runs, so no "
                                "processor holds the customer; the next `journey run` hands its processors "
                                "the suppression list")
    if broker is not None:  # the run stored what it consumed before it stopped: sweep what landed since
        _sweep(settings, requests, reports)
    return reports


def _run_ended(data_dir: Path, timeout: float) -> bool:
    """Whether the embedded run on ``data_dir`` has ended, waiting up to ``timeout`` for one that is stopping."""
    from streams.runfile import running

    deadline = time.monotonic() + timeout
    while running(data_dir) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def _sweep(settings: Settings, requests: list[Any], reports: list[dict[str, Any]]) -> None:
    """The second ClickHouse pass (:func:`sinks.privacy.sweep`); what it deleted goes into each report."""
    from sinks.privacy import sweep
    from streams.query import reader

    with reader(settings) as r:
        late = sweep(r, requests)
    for report, request in zip(reports, requests, strict=True):
        report["clickhouse_in_flight"] = late[request.customer_id]  # rows stored after the first pass, deleted


def _apply_running(settings: Settings, broker: tuple[dict[str, str], int], requests: list[Any],
                   reports: list[dict[str, Any]]) -> None:
    """Send the requests to the running processors, wait for them and for the sink, then sweep ClickHouse."""
    from streams.topics import CHANGELOG_ROLES, ensure_topics, topic_specs

    kafka, partitions = broker
    ensure_topics(kafka, topic_specs(partitions, settings.group_prefix), settings.topic_replication)
    sent = [send_request(kafka, partitions, q.customer_id, q.subject, "erase", q.request_id)[1][0] for q in requests]
    roles = [*CHANGELOG_ROLES, "identity"] if settings.identity_resolution else CHANGELOG_ROLES
    groups = {name: settings.group_id(name) for name in roles}
    deadline = time.monotonic() + settings.privacy_wait_seconds
    for report, (partition, offset) in zip(reports, sent, strict=True):
        report["processors"] = wait_applied(kafka, groups, partition, offset, max(deadline - time.monotonic(), 0.0))
    if not sink_caught_up(kafka, settings.group_id("sink"), settings.privacy_wait_seconds):
        for report in reports:
            report["clickhouse_in_flight"] = ("pending: the sink has not stored every record yet; erase again once it "
                                              "has to remove any that were on their way")
        return
    _sweep(settings, requests, reports)


def export_customer(settings: Settings, customer_id: str, out: Path | None) -> tuple[Path, dict[str, int]]:
    """Write everything held about ``customer_id`` (ClickHouse rows, processor states) to a JSON file."""
    from sinks.privacy import audit_export, export, write_export
    from streams.query import reader
    from streams.topics import changelogs

    subject = settings.pseudonymizer().subject(customer_id)
    broker = _broker(settings)
    states = {} if broker is None else processor_states(broker[0], changelogs(settings.group_prefix), customer_id,
                                                        broker[1])
    with reader(settings) as r:
        rows = export(r, customer_id, subject)
        ids, components = _linked(settings, r, broker, customer_id)
        if components:
            states["identity"] = components
        linked = {i: {"clickhouse": export(r, i, settings.pseudonymizer().subject(i)),
                      "processor_state": {} if broker is None else
                      processor_states(broker[0], changelogs(settings.group_prefix), i, broker[1])} for i in ids}
        audit_export(r, subject, rows, states)
    path = out or settings.data_dir / "exports" / f"{subject}.json"
    write_export(path, customer_id, subject, rows, states, linked)
    return path, {**{t: len(v) for t, v in rows.items()}, **{f"state:{n}": 1 for n in states},
                  **({"linked_identifiers": len(ids)} if ids else {})}
