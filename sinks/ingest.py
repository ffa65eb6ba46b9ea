"""The ingestion sink: input topics -> validation -> ClickHouse raw tables, bad input -> dead letters.

A batch is stored when it has ``sink_batch_rows`` records, when it is ``sink_batch_seconds``
old, or, once the sink has caught up with its input (a ``consume`` came back short), as soon
as it has ``sink_min_batch_rows``: large inserts while there is a backlog, and no waiting out
the clock for a batch that is already worth an insert.

Commit protocol, per batch:

1. Every record is validated (:func:`schemas.validation.validate`). A valid event whose id
   is already stored or already taken with the same bytes (``content_hash``) is a duplicate and
   is skipped (counted); with other bytes it becomes a ``conflicting_duplicate`` dead letter; an
   invalid one becomes a dead letter with the reason.
2. Accepted events are inserted, one columnar (Arrow) insert per raw table.
3. New dead letters are inserted into ``dead_letters`` and produced to the
   ``dead-letters`` topic (with the header ``journey-stored: dead_letters``) until the broker
   acknowledged them (:mod:`sinks.letters`: a letter is bounded in size, and one the broker
   refuses anyway is logged and counted, never raised). The sink also reads ``dead-letters``:
   letters other workers produced there (the delivery adapters' ``delivery_failed`` after the
   last retry) are inserted too, once
   per ``dead_letter_id``; the ones carrying the header are already stored and skipped.
4. Only then are the consumed offsets committed.

Steps 2-3 run on a thread of their own while the next batch is consumed and validated
(step 1); one store is in flight at a time, and step 4 follows in the consuming thread once
it is stored. Batches flushed while a store is in flight wait for it, built, and go to the
insert thread together as one store (one insert per table: each insert's fixed cost, mostly
the rollup views', is then paid once for all of them); past ``MAX_QUEUED`` waiting batches the
consuming thread waits too. Revocation and shutdown wait until everything is stored.

A crash before step 4 redelivers the batch. Nothing is stored twice because the
"already stored" ids are rebuilt from ClickHouse before the first record of a newly assigned
partition is handled: the raw tables themselves are the record of what landed (a partition's
ids are its customers', ``kafkaMurmurHash(customer_id) % partitions``, Kafka's own partitioner,
and those stored from it). A record found off its customer's murmur2 partition (placed by
another partitioner; a keyless one is a ``missing_key`` dead letter) is checked further
(:class:`StoredIds`). The dead-letter topic is at-least-once; its records carry a stable ``dead_letter_id``.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaError, Message, TopicPartition

from plumbing.batch_worker import BatchWorker, consumer_config
from plumbing.metadata import metadata
from plumbing.partitioner import partition_for
from plumbing.produce import TrackingProducer
from schemas.outputs import DeadLetter
from schemas.registry import (
    CUSTOMER_FEATURES,
    DEAD_LETTERS,
    DELIVERIES,
    IDENTITY_MERGES,
    INPUT_TOPICS,
    LATE_EVENTS,
    MESSAGE_DECISIONS,
    MESSAGES,
    MODEL_DRIFT,
    MODEL_METRICS,
    OUTPUT_TOPICS,
    PRIVACY_AUDIT,
    SCORES,
    TRIGGERS,
)
from schemas.validation import Limits, Rejected, dead_letter, validate, validate_output
from sinks.actions import decisions_table, deliveries_table, messages_table, triggers_table
from sinks.batches import Staged, dead_letters_table, events_table, late_events_table, profiles_table, warm_up
from sinks.client import DEAD_LETTER_TABLE, RAW_INSERT_SETTINGS, RAW_TABLES
from sinks.identity import identity_merges_table
from sinks.letters import LetterPublisher
from sinks.models import model_drift_table, model_metrics_table, scores_table
from sinks.privacy import audit_table

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Output topics the sink also stores (written by our processors, so already valid): topic -> (table, builder).
OUTPUT_TABLES: dict[str, tuple[str, Callable[[list[dict[str, Any]], datetime], Any]]] = {
    CUSTOMER_FEATURES: ("customer_profile_history", profiles_table),
    LATE_EVENTS: ("late_events", late_events_table),
    TRIGGERS: ("triggers", triggers_table),
    MESSAGE_DECISIONS: ("guard_decisions", decisions_table),
    MESSAGES: ("messages", messages_table),
    DELIVERIES: ("deliveries", deliveries_table),
    PRIVACY_AUDIT: ("privacy_audit", audit_table),
}
OUTPUT_TABLES[SCORES] = ("scores", scores_table)
OUTPUT_TABLES[MODEL_METRICS] = ("model_metrics", model_metrics_table)
OUTPUT_TABLES[MODEL_DRIFT] = ("model_drift", model_drift_table)
OUTPUT_TABLES[IDENTITY_MERGES] = ("identity_merges", identity_merges_table)


class InsertFailed(RuntimeError):
    """ClickHouse kept refusing a call (an insert, a read of stored ids); nothing was committed: nothing is lost."""


@dataclass
class SinkStats:
    """What the sink has done since it started."""

    consumed: Counter[str] = field(default_factory=Counter)
    inserted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    #: Calls ClickHouse refused (inserts, stored-id reads) and that were tried again, per table.
    insert_retries: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    insert_seconds: float = 0.0


@dataclass
class SinkConfig:
    group_id: str
    batch_rows: int = 50_000
    batch_seconds: float = 1.0
    min_batch_rows: int = 10_000
    limits: Limits = field(default_factory=Limits)
    topics: tuple[str, ...] = (*INPUT_TOPICS, *OUTPUT_TABLES, DEAD_LETTERS)
    insert_retries: int = 8
    consumer_overrides: dict[str, Any] = field(default_factory=dict)


_RAW_TABLE_NAMES = frozenset(RAW_TABLES.values())

#: Built batches that may wait for the insert thread before the consuming thread waits for it.
MAX_QUEUED = 3
#: The consume timeout while a built batch waits for the insert thread.
QUEUED_POLL_SECONDS = 0.02

_crc32, _adler32 = zlib.crc32, zlib.adler32

#: A record found off its customer's murmur2 partition, not known to this worker: (topic, event, partition,
#: offset, key, value, content hash).
Unsure = tuple[str, Any, int, int, bytes | None, bytes, int]

#: Customers whose murmur2 partition is remembered (per partition count) before the memo starts again.
PLACEMENT_CACHE = 1_000_000

#: The header on the sink's own dead letters: already in ClickHouse, not to be stored again when read back.
STORED_HEADER = ("journey-stored", b"dead_letters")


def content_hash(value: bytes) -> int:
    """A stable 64-bit hash of a record's bytes (CRC-32 and Adler-32 side by side), never 0 (0 stands for
    "stored before hashes were kept").

    It only tells apart two records that carry the same event id, so it need not resist an adversary;
    it is computed for every record, and this pair of C checksums costs half of a BLAKE2b digest (about
    0.4 against 0.8 us for a 150-byte record, measured side by side on the same machine).
    """
    return (_crc32(value) << 32 | _adler32(value)) or 1


class StoredIds:
    """Ids already in ClickHouse with their content hash, per assigned partition: the sink's memory of what landed.

    A partition's ids are those of its customers (``kafkaMurmurHash(customer_id) % partitions``, where
    Kafka's partitioner puts them) and those stored from it (``source_partition``: records another
    partitioner placed there). A record found elsewhere than its customer's murmur2
    partition may have a copy on any partition: it is also checked against ``elsewhere`` (such ids this
    worker took and has not stored yet) and, when not found, looked up in ClickHouse (:meth:`lookup`).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._events: dict[tuple[str, int], dict[str, int]] = {}
        self.dead_letters: set[str] = set()
        #: Per topic: ids (and hashes) of records found off their murmur2 partition, taken but not stored yet.
        self.elsewhere: dict[str, dict[str, int]] = defaultdict(dict)

    def load_dead_letters(self) -> None:
        rows = self._client.query(f"SELECT dead_letter_id FROM {DEAD_LETTER_TABLE}").result_rows
        self.dead_letters = {r[0] for r in rows}

    def load(self, topic: str, partition: int, partitions: int) -> dict[str, int]:
        query = (f"SELECT event_id, content_hash FROM {RAW_TABLES[topic]} "
                 f"WHERE kafkaMurmurHash(customer_id) % {int(partitions)} = {int(partition)} "
                 f"OR source_partition = {int(partition)}")
        ids = dict(self._client.query(query).result_rows)
        self._events[(topic, partition)] = ids
        return ids

    def lookup(self, topic: str, customers: list[str], event_ids: list[str]) -> dict[str, int]:
        """Which of ``event_ids`` (of ``customers``) are stored, with their hashes: one query, pruned by customer."""
        query = (f"SELECT event_id, any(content_hash) FROM {RAW_TABLES[topic]} "
                 "WHERE customer_id IN {c:Array(String)} AND event_id IN {e:Array(String)} GROUP BY event_id")
        return dict(self._client.query(query, parameters={"c": sorted(set(customers)),
                                                          "e": sorted(set(event_ids))}).result_rows)

    def forget(self, topic: str, partition: int) -> None:
        self._events.pop((topic, partition), None)

    def of(self, topic: str, partition: int) -> dict[str, int]:
        return self._events.setdefault((topic, partition), {})

    def loaded(self, topic: str, partition: int) -> dict[str, int] | None:
        return self._events.get((topic, partition))


@dataclass(slots=True)
class _Batch:
    """A flushed batch: its Arrow tables (table, data, rows), dead letters, and the offsets to commit once stored."""

    inserts: list[tuple[str, Any, int]]
    letters: list[DeadLetter]
    read_letters: list[DeadLetter]
    offsets: list[TopicPartition]
    started: float
    #: Per topic, ids taken off their murmur2 partition up to this batch: forgotten once it is stored.
    misplaced: dict[str, list[str]] = field(default_factory=dict)


def _merged(batches: list[_Batch]) -> _Batch:
    """One batch storing what ``batches`` store, with one insert per table where their columns agree."""
    parts: dict[str, list[tuple[Any, int]]] = defaultdict(list)
    offsets: dict[tuple[str, int], int] = {}
    for batch in batches:
        for table, data, rows in batch.inserts:
            parts[table].append((data, rows))
        for tp in batch.offsets:
            offsets[(tp.topic, tp.partition)] = max(tp.offset, offsets.get((tp.topic, tp.partition), 0))
    inserts: list[tuple[str, Any, int]] = []
    for table, tables in parts.items():
        try:
            data = tables[0][0] if len(tables) == 1 else pa.concat_tables([t for t, _ in tables],
                                                                           promote_options="default")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns that do not concatenate: inserted one by one
            inserts += [(table, t, rows) for t, rows in tables]
            continue
        inserts.append((table, data, sum(rows for _, rows in tables)))
    misplaced: dict[str, list[str]] = defaultdict(list)
    for batch in batches:
        for topic, ids in batch.misplaced.items():
            misplaced[topic] += ids
    return _Batch(inserts, [letter for b in batches for letter in b.letters],
                  [letter for b in batches for letter in b.read_letters],
                  [TopicPartition(t, p, o) for (t, p), o in offsets.items()], min(b.started for b in batches),
                  dict(misplaced))


class IngestSink(BatchWorker):
    """One sink worker: a member of the sink consumer group that owns some input partitions."""

    def __init__(self, kafka_config: dict[str, str], client: Client, config: SinkConfig) -> None:
        super().__init__(consumer_config(kafka_config, config.group_id, **config.consumer_overrides),
                         list(config.topics), config.batch_rows)
        self.client = client
        self.config = config
        self.stats = SinkStats()
        self.stored = StoredIds(client)
        self._producer = TrackingProducer(kafka_config, **{"linger.ms": 5})
        self._letters = LetterPublisher(self._producer, [STORED_HEADER], stopping=lambda: self._closing)
        self._pending: dict[str, Staged] = defaultdict(Staged)
        self._pending_letters: list[DeadLetter] = []  # the sink's own: stored, then produced
        self._read_letters: list[DeadLetter] = []  # read from the topic (other workers'): stored only
        self._pending_outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        #: Where each pending output record came from (partition, offset, key, value): for its dead letter.
        self._output_sources: dict[str, list[tuple[int, int, bytes | None, bytes]]] = defaultdict(list)
        self._positions: dict[tuple[str, int], int] = {}
        self._batch_started: float | None = None
        self._partition_counts: dict[str, int] = {}
        self._placements: dict[int, dict[str, int]] = {}  # partition count -> customer id -> murmur2 partition
        self._unloaded: set[tuple[str, int]] = set()  # assigned raw-topic partitions whose stored ids are not loaded
        self._closing = False
        self._inserter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-insert")
        self._inflight: tuple[_Batch, Future[None]] | None = None
        self._queued: list[_Batch] = []  # built, waiting for the insert thread

    # -- group membership -------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """Note the new partitions; their stored ids are loaded before their first record is handled.

        This runs inside ``consume``: no call on the consumer here (see ``_load_assigned``).
        """
        self._unloaded.update((tp.topic, tp.partition) for tp in partitions if tp.topic in RAW_TABLES)
        log.info("assigned %d partitions", len(partitions))

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Store and commit what was taken (a commit makes no call state: safe inside ``consume``), forget the ids."""
        if self._closing:
            return
        self.flush()
        for tp in partitions:
            self.stored.forget(tp.topic, tp.partition)
            self._unloaded.discard((tp.topic, tp.partition))

    def _load_assigned(self) -> None:
        """Load the stored ids of the partitions assigned since the last batch (outside any callback).

        confluent-kafka keeps one call state per client and thread: a call that makes one (``list_topics``,
        ``consume``, ``poll``) from inside a rebalance or statistics callback ends the state of the
        ``consume`` that runs the callback, and its next callback aborts the process (``CallState_get:
        Assertion 'cs != NULL' failed``). So the partition counts are read here, after ``consume`` returned.
        """
        self._drain()  # the stored-id queries share the ClickHouse client with the insert thread
        started = time.monotonic()
        pending, self._unloaded = sorted(self._unloaded), set()
        for topic, partition in pending:
            count = self._partition_count(topic)
            self._retrying(f"reading the stored ids of {topic}[{partition}]", RAW_TABLES[topic],
                           lambda t=topic, p=partition, n=count: self.stored.load(t, p, n))
        log.info("stored ids of %d partitions loaded in %.2fs", len(pending), time.monotonic() - started)

    def _partition_count(self, topic: str) -> int:
        """``topic``'s partition count, from metadata read once (never call this from a callback)."""
        count = self._partition_counts.get(topic)
        if count is None:
            assert self._consumer is not None
            count = len(metadata(self._consumer, topic).topics[topic].partitions)
            self._partition_counts[topic] = count
        return count

    # -- the loop ---------------------------------------------------------------------------
    def start(self) -> None:
        self._retrying("reading the stored dead letters", DEAD_LETTER_TABLE, self.stored.load_dead_letters)
        warm_up()
        super().start()

    def run(self, stop: threading.Event) -> SinkStats:  # type: ignore[override]
        """Consume until ``stop`` is set; the last batch is flushed and committed before returning."""
        super().run(stop)
        return self.stats

    def flush_due(self) -> bool:
        """A full batch, an old one, or, caught up with the input, one worth an insert (see the module doc)."""
        if self._batch_started is None:
            return False
        rows = self._row_count()
        return (rows >= self.config.batch_rows
                or (self.caught_up and rows >= self.config.min_batch_rows)
                or time.monotonic() - self._batch_started >= self.config.batch_seconds)

    def handle(self, messages: list[Message]) -> None:
        """Validate and stage a list of records (step 1 of the protocol).

        This loop runs once per record, so its bookkeeping is per run of records from one
        partition (librdkafka hands them over that way): the position and the consumed count
        are written when the run ends, and the run's stored-id set and staging lists are looked
        up once.
        """
        if self._unloaded:
            self._load_assigned()
        if self._batch_started is None:
            self._batch_started = time.monotonic()
        now = datetime.now(UTC)
        limits = self.config.limits
        consumed = self.stats.consumed
        positions = self._positions
        run_topic: str | None = None
        run_partition = -1
        last_offset = run_length = 0
        seen: dict[str, int] = {}
        events: list[Any] = []
        partitions: list[int] = []
        offsets: list[int] = []
        hashes: list[int] = []
        place: Callable[[str], int] = int
        elsewhere: dict[str, int] = {}
        unsure: list[Unsure] = []  # off their customer's partition, and not found yet
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error.str())
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            if partition != run_partition or topic != run_topic:
                if run_topic is not None:
                    positions[(run_topic, run_partition)] = last_offset + 1
                    consumed[run_topic] += run_length
                run_topic, run_partition, run_length = topic, partition, 0
                if topic not in OUTPUT_TABLES and topic != DEAD_LETTERS:
                    seen = self.stored.of(topic, partition)
                    staged = self._pending[topic]
                    events, partitions, offsets, hashes = staged.events, staged.partitions, staged.offsets, \
                        staged.hashes
                    place = self._placement(topic)
                    elsewhere = self.stored.elsewhere[topic]
            last_offset = offset
            run_length += 1
            value, key = msg.value(), msg.key()
            if topic in OUTPUT_TABLES:
                if value is not None:
                    try:
                        record = orjson.loads(value)
                    except orjson.JSONDecodeError:
                        record = None
                    if isinstance(record, dict):
                        self._pending_outputs[topic].append(record)
                        self._output_sources[topic].append((partition, offset, key, value))
                    else:
                        self._reject_output(topic, partition, offset, key, value, now)
                continue
            if topic == DEAD_LETTERS:
                self._letter_read(msg)
                continue
            try:
                event = validate(topic, value, key, limits, now)
            except Rejected as rejected:
                self._reject(topic, partition, offset, key, value, rejected, now)
                continue
            event_id = event.event_id
            digest = content_hash(value)  # type: ignore[arg-type]  # validate refused a record without value
            prior = seen.get(event_id)
            home = place(event.customer_id)
            misplaced = home != partition
            if prior is None:
                prior = elsewhere.get(event_id)
                if prior is None and misplaced:  # a copy on its customer's partition, if this worker owns it
                    prior = (self.stored.loaded(topic, home) or {}).get(event_id)
                if prior is None and misplaced:
                    unsure.append((topic, event, partition, offset, key, value, digest))  # type: ignore[arg-type]
                    continue
            if prior is not None:
                self._seen_again(topic, partition, offset, key, value, prior, digest, now)
                continue
            seen[event_id] = digest
            if misplaced:
                self._took_misplaced(topic, event, digest, place)
            events.append(event)
            partitions.append(partition)
            offsets.append(offset)
            hashes.append(digest)
        if run_topic is not None:
            positions[(run_topic, run_partition)] = last_offset + 1
            consumed[run_topic] += run_length
        if unsure:
            self._settle_unsure(unsure, now)

    def _seen_again(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                    prior: int, digest: int, received: datetime) -> None:
        """A record whose event id was stored or taken: skipped when its bytes are the same (0: stored before
        hashes were kept, so taken to be), a ``conflicting_duplicate`` dead letter when they differ."""
        if prior == digest or prior == 0:
            self.stats.duplicates[topic] += 1
            return
        self._reject(topic, partition, offset, key, value,
                     Rejected("conflicting_duplicate", "event_id already stored with different content; the "
                                                       "first one stored is kept"), received)

    def _settle_unsure(self, unsure: list[Unsure], received: datetime) -> None:
        """Records found off their customer's murmur2 partition whose id this worker does not know: look their
        ids up in ClickHouse (on the insert thread, after the store in flight), then stage or skip each."""
        by_topic: dict[str, list[Unsure]] = defaultdict(list)
        for item in unsure:
            by_topic[item[0]].append(item)
        for topic, items in by_topic.items():
            customers, ids = [i[1].customer_id for i in items], [i[1].event_id for i in items]
            stored = self._inserter.submit(self._retrying, f"looking up ids stored from {topic}", RAW_TABLES[topic],
                                           lambda t=topic, c=customers, e=ids: self.stored.lookup(t, c, e)).result()
            elsewhere, staged, place = self.stored.elsewhere[topic], self._pending[topic], self._placement(topic)
            for _, event, partition, offset, key, value, digest in items:
                home = self.stored.loaded(topic, place(event.customer_id)) or {}
                prior = stored.get(event.event_id, elsewhere.get(event.event_id, home.get(event.event_id)))
                if prior is not None:
                    self._seen_again(topic, partition, offset, key, value, prior, digest, received)
                    continue
                self.stored.of(topic, partition)[event.event_id] = digest
                self._took_misplaced(topic, event, digest, place)
                staged.add(event, partition, offset, digest)

    def _took_misplaced(self, topic: str, event: Any, digest: int, place: Callable[[str], int]) -> None:
        """Remember an event taken off its murmur2 partition: in ``elsewhere`` until stored, and in its
        customer's partition's ids when this worker owns it (a copy placed by murmur2 is checked there)."""
        self.stored.elsewhere[topic][event.event_id] = digest
        home = self.stored.loaded(topic, place(event.customer_id))
        if home is not None:
            home[event.event_id] = digest

    def _placement(self, topic: str) -> Callable[[str], int]:
        """``customer_id -> partition`` by Kafka's murmur2 partitioner for ``topic`` (memoised per customer)."""
        count = self._partition_count(topic)
        cache = self._placements.setdefault(count, {})
        if len(cache) > PLACEMENT_CACHE:
            cache.clear()

        def place(customer_id: str) -> int:
            found = cache.get(customer_id)
            if found is None:
                found = cache[customer_id] = partition_for(customer_id.encode(), count)
            return found
        return place

    def _reject(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                rejected: Rejected, received: datetime) -> None:
        """Stage a dead letter for a record that failed validation (once per distinct bad record)."""
        letter = dead_letter(topic, partition, offset, key, value, rejected.reason, rejected.detail, received)
        if letter.dead_letter_id in self.stored.dead_letters:
            self.stats.duplicates[DEAD_LETTERS] += 1
        else:
            self.stored.dead_letters.add(letter.dead_letter_id)
            self._pending_letters.append(letter)

    def _reject_output(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes,
                       received: datetime) -> None:
        """Dead-letter a record on an output topic that is not a JSON object (anyone can write to a topic)."""
        try:
            validate_output(topic, value)
            rejected = Rejected("not_an_object", "record is not a JSON object")
        except Rejected as why:
            rejected = why
        self._reject(topic, partition, offset, key, value, rejected, received)

    def _outputs_fit_for_contract(self, topic: str, received: datetime) -> list[dict[str, Any]]:
        """The records that fit the topic's contract, as it reads them; each other one gets a dead letter.

        Only called when a batch's table could not be built: our processors' records always fit, so
        the contract is checked record by record only for a batch that holds a foreign, bad one.
        """
        adapter = OUTPUT_TOPICS[topic].adapter
        fit = []
        for partition, offset, key, value in self._output_sources[topic]:
            try:
                valid = validate_output(topic, value)
            except Rejected as rejected:
                self._reject(topic, partition, offset, key, value, rejected, received)
                continue
            fit.append(adapter.dump_python(valid, mode="json"))  # normalised: e.g. a unix time as ISO text
        return fit

    def _letter_read(self, msg: Message) -> None:
        """Stage a dead letter another worker produced (the sink's own carry ``STORED_HEADER``)."""
        if STORED_HEADER in (msg.headers() or []):
            return
        try:
            letter = DeadLetter.model_validate_json(msg.value() or b"")
        except ValueError:
            log.warning("unreadable record on %s[%d]@%d: not stored", DEAD_LETTERS, msg.partition(), msg.offset())
            self.stats.duplicates["unreadable_dead_letter"] += 1
            return
        if letter.dead_letter_id in self.stored.dead_letters:
            self.stats.duplicates[DEAD_LETTERS] += 1
            return
        self.stored.dead_letters.add(letter.dead_letter_id)
        self._read_letters.append(letter)

    def _row_count(self) -> int:
        return (sum(map(len, self._pending.values())) + len(self._pending_letters) + len(self._read_letters)
                + sum(map(len, self._pending_outputs.values())))

    def flush(self) -> None:
        """Steps 2-4 for everything taken, finished (stored and committed) before it returns."""
        self._start_flush()
        self._drain()

    def _drain(self) -> None:
        """Store and commit everything built (the batch in flight, then what is queued)."""
        while self._inflight is not None or self._queued:
            self._settle(wait=True)

    def flush_soon(self) -> None:
        """Start storing what was taken (see ``_start_flush``)."""
        self._start_flush()

    def _start_flush(self) -> None:
        """Build the batch's Arrow tables and queue them for the insert thread (steps 2-3).

        chDB (and a server's HTTP round trip) releases the GIL while it inserts, so the next
        batch is consumed and validated while this one is written. One store is in flight at a
        time; its offsets are committed in the consuming thread (``_settle``) only after all its
        inserts succeeded. A batch built while it is in flight waits, and goes with the others
        waiting as one store once the insert thread is free (``_submit``).
        """
        if not self._positions:
            self._batch_started = None
            return
        self._settle(wait=False)  # before building: a store that finished meanwhile frees the insert thread
        started = time.monotonic()
        ingested_at = datetime.now(UTC)
        inserts: list[tuple[str, Any, int]] = []
        for topic, staged in self._pending.items():
            if staged:
                inserts.append((RAW_TABLES[topic], events_table(topic, staged, ingested_at), len(staged)))
        for topic, records in self._pending_outputs.items():
            table, build = OUTPUT_TABLES[topic]
            try:
                built = build(records, ingested_at)
            except (KeyError, TypeError, ValueError, AttributeError, pa.ArrowException):
                records = self._outputs_fit_for_contract(topic, ingested_at)
                if not records:
                    continue
                built = build(records, ingested_at)
            inserts.append((table, built, len(records)))
        letters, read = self._pending_letters, self._read_letters
        if letters or read:
            inserts.append((DEAD_LETTER_TABLE, dead_letters_table([*letters, *read]), len(letters) + len(read)))
        batch = _Batch(inserts, letters, read, [TopicPartition(t, p, o) for (t, p), o in self._positions.items()],
                       started, {t: list(ids) for t, ids in self.stored.elsewhere.items() if ids})
        self._pending, self._pending_outputs = defaultdict(Staged), defaultdict(list)
        self._output_sources = defaultdict(list)
        self._pending_letters, self._read_letters = [], []
        self._positions, self._batch_started = {}, None
        self._queued.append(batch)
        self._settle(wait=len(self._queued) > MAX_QUEUED)

    def _submit(self) -> None:
        """Hand the queued batches, as one, to the insert thread if it is free."""
        if self._inflight is not None or not self._queued:
            return
        batch = self._queued[0] if len(self._queued) == 1 else _merged(self._queued)
        self._queued = []
        self._inflight = (batch, self._inserter.submit(self._store, batch))

    def poll(self, timeout: float) -> int:
        # While a built batch waits for the insert thread, come back soon to hand it over.
        taken = super().poll(min(timeout, QUEUED_POLL_SECONDS) if self._queued else timeout)
        self._settle(wait=False)
        return taken

    def _store(self, batch: _Batch) -> None:
        """Steps 2-3, on the insert thread: insert every table, then publish the sink's own dead letters."""
        for table, data, rows in batch.inserts:
            self._insert(table, data)
            self.stats.inserted[table] += rows
        for letter in batch.read_letters:
            self.stats.dead_letters[letter.reason] += 1
        for letter in batch.letters:
            self.stats.dead_letters[letter.reason] += 1
        if batch.letters:
            self._letters.publish(batch.letters)  # never raises: the letters are stored already

    def _settle(self, wait: bool) -> None:
        """Step 4 for the store in flight once it is done, then hand what is queued to the insert thread.

        Raises what storing raised (nothing committed). ``wait``: block until the store is done.
        """
        if self._inflight is not None:
            batch, future = self._inflight
            if not wait and not future.done():
                return
            self._inflight = None
            future.result()
            self.commit(batch.offsets)
            for topic, ids in batch.misplaced.items():  # stored: a copy is now found by a lookup
                elsewhere = self.stored.elsewhere[topic]
                for event_id in ids:
                    elsewhere.pop(event_id, None)
            self.stats.batches += 1
            self.stats.insert_seconds += time.monotonic() - batch.started
        self._submit()

    def close(self) -> None:
        """Let a batch in flight finish storing (uncommitted: it is redelivered and skipped as stored).

        Queued batches are dropped unstored and uncommitted: they are redelivered. Closing the consumer
        revokes its partitions; that revocation stores nothing (the insert thread is gone: storing then
        raised "cannot schedule new futures after shutdown" over the error that ended the run).
        """
        self._closing = True
        self._inserter.shutdown(wait=True)
        self._inflight = None
        self._queued = []
        super().close()

    def _insert(self, table: str, data: Any) -> None:
        settings = RAW_INSERT_SETTINGS if table in _RAW_TABLE_NAMES else None
        self._retrying(f"insert into {table}", table, lambda: self.client.insert_arrow(table, data, settings=settings))

    def _retrying(self, what: str, table: str, call: Callable[[], T]) -> T:
        """``call()``, tried ``insert_retries`` times with a growing pause while ClickHouse refuses it (each
        retry counted in ``stats.insert_retries[table]``); then :class:`InsertFailed` (nothing committed)."""
        delay = 0.2
        for attempt in range(1, self.config.insert_retries + 1):
            try:
                return call()
            except Exception as exc:  # the driver raises several types; all mean "not done"
                if attempt == self.config.insert_retries:
                    raise InsertFailed(f"{what} failed {attempt} times: {exc}") from exc
                log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, exc)
                self.stats.insert_retries[table] += 1
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable: insert_retries is at least 1")
