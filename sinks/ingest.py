"""The ingestion sink: input topics -> validation -> ClickHouse raw tables, bad input -> dead letters.

A batch is stored when it has ``sink_batch_rows`` records, when it is ``sink_batch_seconds``
old, or, once the sink has caught up with its input (a ``consume`` came back short), as soon
as it has ``sink_min_batch_rows``: large inserts while there is a backlog, and no waiting out
the clock for a batch that is already worth an insert.

Commit protocol, per batch:

1. Every record is validated (:func:`schemas.validation.validate`). A valid event whose id
   is already stored or already in this batch is a duplicate and is skipped; an
   invalid one becomes a dead letter with the reason.
2. Accepted events are inserted, one columnar (Arrow) insert per raw table.
3. New dead letters are inserted into ``dead_letters`` and produced to the
   ``dead-letters`` topic (with the header ``journey-stored: dead_letters``); the producer
   is flushed. The sink also reads ``dead-letters``: letters other workers produced there
   (the delivery adapters' ``delivery_failed`` after the last retry) are inserted too, once
   per ``dead_letter_id``; the ones carrying the header are already stored and skipped.
4. Only then are the consumed offsets committed.

Steps 2-3 run on a thread of their own while the next batch is consumed and validated
(step 1); one store is in flight at a time, and step 4 follows in the consuming thread once
it is stored. Batches flushed while a store is in flight wait for it, built, and go to the
insert thread together as one store (one insert per table: each insert's fixed cost, mostly
the rollup views', is then paid once for all of them); past ``MAX_QUEUED`` waiting batches the
consuming thread waits too. Revocation and shutdown wait until everything is stored.

A crash before step 4 redelivers the batch. Nothing is stored twice because the
"already stored" ids are rebuilt from ClickHouse whenever a partition is assigned:
the raw tables themselves are the record of what landed (a customer's partition is
``kafkaMurmurHash(customer_id) % partitions``, Kafka's own partitioner). The
dead-letter topic is at-least-once; its records carry a stable ``dead_letter_id``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaError, Message, TopicPartition

from schemas.outputs import DeadLetter
from schemas.registry import INPUT_TOPICS, OUTPUT_TOPICS
from schemas.validation import Limits, Rejected, dead_letter, validate, validate_output
from sinks.actions import decisions_table, deliveries_table, messages_table, triggers_table
from sinks.batches import Staged, dead_letters_table, events_table, late_events_table, profiles_table, warm_up
from sinks.client import DEAD_LETTER_TABLE, RAW_INSERT_SETTINGS, RAW_TABLES
from sinks.models import model_drift_table, model_metrics_table, scores_table
from sinks.privacy import audit_table
from streams.batch_worker import BatchWorker, consumer_config
from streams.produce import TrackingProducer
from streams.topics import DEAD_LETTERS, metadata

log = logging.getLogger(__name__)

#: Output topics the sink also stores (written by our processors, so already valid): topic -> (table, builder).
OUTPUT_TABLES: dict[str, tuple[str, Callable[[list[dict[str, Any]], datetime], Any]]] = {
    "customer-features": ("customer_profile_history", profiles_table),
    "late-events": ("late_events", late_events_table),
    "triggers": ("triggers", triggers_table),
    "message-decisions": ("guard_decisions", decisions_table),
    "messages": ("messages", messages_table),
    "deliveries": ("deliveries", deliveries_table),
    "privacy-audit": ("privacy_audit", audit_table),
}
OUTPUT_TABLES["scores"] = ("scores", scores_table)
OUTPUT_TABLES["model-metrics"] = ("model_metrics", model_metrics_table)
OUTPUT_TABLES["model-drift"] = ("model_drift", model_drift_table)


class InsertFailed(RuntimeError):
    """ClickHouse kept refusing a batch; offsets were not committed, so nothing is lost."""


@dataclass
class SinkStats:
    """What the sink has done since it started."""

    consumed: Counter[str] = field(default_factory=Counter)
    inserted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
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

#: The header on the sink's own dead letters: already in ClickHouse, not to be stored again when read back.
STORED_HEADER = ("journey-stored", b"dead_letters")


class StoredIds:
    """Ids already in ClickHouse, per assigned partition: the sink's memory of what landed."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._events: dict[tuple[str, int], set[str]] = {}
        self.dead_letters: set[str] = set()

    def load_dead_letters(self) -> None:
        rows = self._client.query(f"SELECT dead_letter_id FROM {DEAD_LETTER_TABLE}").result_rows
        self.dead_letters = {r[0] for r in rows}

    def load(self, topic: str, partition: int, partitions: int) -> set[str]:
        query = (f"SELECT event_id FROM {RAW_TABLES[topic]} "
                 f"WHERE kafkaMurmurHash(customer_id) % {int(partitions)} = {int(partition)}")
        ids = {r[0] for r in self._client.query(query).result_rows}
        self._events[(topic, partition)] = ids
        return ids

    def forget(self, topic: str, partition: int) -> None:
        self._events.pop((topic, partition), None)

    def of(self, topic: str, partition: int) -> set[str]:
        return self._events.setdefault((topic, partition), set())


@dataclass(slots=True)
class _Batch:
    """A flushed batch: its Arrow tables (table, data, rows), dead letters, and the offsets to commit once stored."""

    inserts: list[tuple[str, Any, int]]
    letters: list[DeadLetter]
    read_letters: list[DeadLetter]
    offsets: list[TopicPartition]
    started: float


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
    return _Batch(inserts, [letter for b in batches for letter in b.letters],
                  [letter for b in batches for letter in b.read_letters],
                  [TopicPartition(t, p, o) for (t, p), o in offsets.items()], min(b.started for b in batches))


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
        self._pending: dict[str, Staged] = defaultdict(Staged)
        self._pending_letters: list[DeadLetter] = []  # the sink's own: stored, then produced
        self._read_letters: list[DeadLetter] = []  # read from the topic (other workers'): stored only
        self._pending_outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        #: Where each pending output record came from (partition, offset, key, value): for its dead letter.
        self._output_sources: dict[str, list[tuple[int, int, bytes | None, bytes]]] = defaultdict(list)
        self._positions: dict[tuple[str, int], int] = {}
        self._batch_started: float | None = None
        self._partition_counts: dict[str, int] = {}
        self._inserter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-insert")
        self._inflight: tuple[_Batch, Future[None]] | None = None
        self._queued: list[_Batch] = []  # built, waiting for the insert thread

    # -- group membership -------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        self._drain()  # the stored-id queries below share the ClickHouse client with the insert thread
        consumer = self._consumer
        started = time.monotonic()
        for tp in partitions:
            if tp.topic not in RAW_TABLES:
                continue
            count = self._partition_counts.get(tp.topic)
            if count is None:
                count = len(metadata(consumer, tp.topic).topics[tp.topic].partitions)
                self._partition_counts[tp.topic] = count
            self.stored.load(tp.topic, tp.partition, count)
        log.info("assigned %d partitions; stored ids loaded in %.2fs", len(partitions), time.monotonic() - started)

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.flush()
        for tp in partitions:
            self.stored.forget(tp.topic, tp.partition)

    # -- the loop ---------------------------------------------------------------------------
    def start(self) -> None:
        self.stored.load_dead_letters()
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
        if self._batch_started is None:
            self._batch_started = time.monotonic()
        now = datetime.now(UTC)
        limits = self.config.limits
        consumed = self.stats.consumed
        positions = self._positions
        run_topic: str | None = None
        run_partition = -1
        last_offset = run_length = 0
        seen: set[str] = set()
        events: list[Any] = []
        partitions: list[int] = []
        offsets: list[int] = []
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
                    events, partitions, offsets = staged.events, staged.partitions, staged.offsets
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
            if event_id in seen:
                self.stats.duplicates[topic] += 1
                continue
            seen.add(event_id)
            events.append(event)
            partitions.append(partition)
            offsets.append(offset)
        if run_topic is not None:
            positions[(run_topic, run_partition)] = last_offset + 1
            consumed[run_topic] += run_length

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
                       started)
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
            self._producer.send(DEAD_LETTERS, letter, key=letter.dead_letter_id, headers=[STORED_HEADER])
            self.stats.dead_letters[letter.reason] += 1
        if batch.letters:
            self._producer.flush()

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
            self.stats.batches += 1
            self.stats.insert_seconds += time.monotonic() - batch.started
        self._submit()

    def close(self) -> None:
        """Let a batch in flight finish storing (uncommitted: it is redelivered and skipped as stored).

        Queued batches are dropped unstored and uncommitted: they are redelivered.
        """
        self._inserter.shutdown(wait=True)
        self._inflight = None
        self._queued = []
        super().close()

    def _insert(self, table: str, data: Any) -> None:
        delay = 0.2
        settings = RAW_INSERT_SETTINGS if table in _RAW_TABLE_NAMES else None
        for attempt in range(1, self.config.insert_retries + 1):
            try:
                self.client.insert_arrow(table, data, settings=settings)
                return
            except Exception as exc:  # the driver raises several types; all mean "not stored"
                if attempt == self.config.insert_retries:
                    raise InsertFailed(f"insert into {table} failed {attempt} times: {exc}") from exc
                log.warning("insert into %s failed (attempt %d), retrying in %.1fs: %s", table, attempt, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
