"""A keyed, stateful stream worker: co-partitioned input topics in, per-key state, outputs out.

It is the host that keeps the hot path out of per-message framework machinery:
librdkafka does group membership and (eager, range) assignment, records arrive in
batches of up to ``batch_rows``, state lives in a dict per partition (or, given a
``state_dir``, in a local RocksDB per partition under a bounded cache: streams/state_store/),
and state writes are coalesced: one changelog record per changed key per flush.

Processors plug in through one contract (streams/host/contract.py: required ``new_state``,
``process``, ``emit``; optional hooks with defaults, resolved once by ``Hosted``). The clock is
injected (streams/host/clock.py), the commit sequence is a ``Checkpoint`` (streams/host/checkpoint.py,
its invariants in its docstring), and every read to the end of a topic goes through
plumbing/restore.py.

Commit protocol, per flush (every ``flush_seconds`` or ``batch_rows`` records):

1. For every key changed since the last flush, its state is written to the compacted
   changelog topic (same partition number as the inputs). Each record carries, with
   the state, the input offsets already applied to that key.
2. The processor's outputs for the changed keys are produced.
3. Once the broker has acknowledged every record produced up to that flush, the input
   offsets it covers are committed. The worker does not wait for that: it goes on with the
   next records, and each poll commits the flushes whose records are all acknowledged, in
   flush order. Revocation and shutdown wait for everything (the producer is flushed).
4. With a ``state_dir``: a flush whose records are all acknowledged goes to the partitions'
   local stores (its states and the changelog offset they reach, in one WriteBatch) just
   before its offsets are committed, so a local store never holds what the changelog does not.

Timers (optional): a processor with ``due(state, now_ms)`` and ``next_timer(state)`` is
called for every key whose next timer has passed the host's clock, after each batch. The
clock is the event-time watermark: the lowest newest event time (``processor.last_event_ms``
after each record) over the assigned partitions of the input topics, skipping partitions at
no record at all at their end (empty topics), so a timer fires only when every partition
has passed its deadline. When every input has been at its end for ``idle_seconds``, the
clock is the newest event time of all. Once the
records are live (an event time within ``live_lag_seconds`` of the wall clock when it
arrived), the clock is also at least ``processor.live_clock(wall ms)``, so a timer fires
even if no further event ever arrives; a replay of old history stays on event time.
A processor without timers runs exactly as before.

Hostile input: an input record without a key is not processed (it sits on a random partition,
not its customer's; counted in ``keyless_refused``), and a record a timed processor refuses
(``last_event_ms`` None) makes no state for a key it has not seen, so no changelog record: junk
keys (one per bad record, or 10 MB long) neither pile up nor fail the changelog write. The sink
owns dead-lettering them. A record the processor raises on (a bug, not bad input) is produced to
``dead-letters`` as ``processing_failed`` and the worker goes on, instead of dying on it at every
restart.

Privacy (given a ``pseudonymizer``): the worker also reads ``privacy-requests`` and erases the
requested customers from its state, changelog and timers (streams/erasure.py). A record from
another processor (not an input topic) about an erased customer who has no state since then
(a trigger made before the triggers worker applied the erasure) is processed on a throwaway
state: its outputs go out, no state comes back. Such a record cannot be told from one made
after the erasure from the customer's later events, so a processor fed only by other
processors' output (the scorer) keeps no state for an erased customer from then on.

After a crash, a worker assigned partition p reads the changelog partition to its end
(partition EOF, not the end offset, which the embedded broker can report wrongly; with a local
store, only from the store's checkpoint on: streams/state_store/restore.py), then resumes from
the committed offsets. A redelivered record whose offset is at or
below the offset its key already applied is skipped, so nothing is counted twice and
nothing is lost, without transactions.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from sys import intern
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from plumbing.batch_worker import BatchWorker, consumer_config
from plumbing.produce import CLIENT_LOGGER, PARTITIONER
from plumbing.restore import end_reader, read_until_end
from plumbing.waiting import REQUEST_SECONDS, flush_following, retry_until_stalled
from schemas.identity import IDENTIFIED_TOPICS
from schemas.registry import DEAD_LETTERS, INPUT_TOPICS, PRIVACY_REQUESTS
from schemas.validation import dead_letter
from streams.erasure import Erasures
from streams.host.checkpoint import Checkpoint
from streams.host.clock import SYSTEM, Clock
from streams.host.contract import Output, Processor, hosted, restore, snapshot
from streams.pseudonym import Pseudonymizer
from streams.restore_progress import RestoreProgress
from streams.state_store import DEFAULT_CACHE_CUSTOMERS
from streams.state_store.cached import CachedStore, deadlines
from streams.state_store.pending import PendingFlushes
from streams.state_store.restore import restore_partitions
from streams.timer_queue import TimerQueue
from streams.topics import ensure_compacted

log = logging.getLogger(__name__)
S = TypeVar("S")
#: Topics of input events: the inputs, and the identity stage's resolved copies of them (streams/identity.py).
EVENT_TOPICS = frozenset(INPUT_TOPICS) | IDENTIFIED_TOPICS
#: The dead-letter reason of a record the processor raised on.
PROCESSING_FAILED = "processing_failed"

__all__ = ["Entry", "Output", "Processor", "StatefulWorker", "WorkerStats"]  # the contract: streams/host/contract.py


@dataclass
class Entry(Generic[S]):
    state: S
    applied: dict[str, int] = field(default_factory=dict)  # input topic -> last applied offset

    def __setstate__(self, saved: dict[str, Any]) -> None:
        """Unpickled from the changelog: one copy of each topic name for every key, not one per record."""
        saved["applied"] = {intern(topic): offset for topic, offset in saved["applied"].items()}
        self.__dict__.update(saved)


@dataclass
class WorkerStats:
    consumed: int = 0
    consumed_by_topic: Counter[str] = field(default_factory=Counter)  # read by the metrics endpoint
    skipped_redelivered: int = 0
    suppressed_in_flight: int = 0  # other processors' records about erased customers without a state: no state made
    changelog_records: int = 0
    outputs: int = 0
    restored_keys: int = 0
    flushes: int = 0
    timer_firings: int = 0
    refused_without_state: int = 0  # input records a timed processor refused for a key it has no state of
    keyless_refused: int = 0  # input records without a key: no partition's state can take them
    restore_records_read: int = 0  # changelog records applied by restores (on disk: only those after the checkpoint)
    state_evicted: int = 0  # states dropped from the cache (they stay on disk)
    stores_rebuilt: int = 0  # local stores discarded (checkpoint corrupt or not in the changelog) and rebuilt
    processing_failed: int = 0  # records the processor raised on: dead-lettered, the worker went on


class StatefulWorker(BatchWorker, Generic[S]):
    """One member of a processor group; run several with the same group id to share partitions."""

    # Not eager (yet): with eager batches in the features (or scoring) workers,
    # tests/integration/test_scale_out.py::test_two_workers_of_every_group_one_of_each_sigkilled_...
    # misses messages (measured three times; cause not found). Full batches keep it exact.
    consume_eagerly = False

    def __init__(self, kafka_config: dict[str, str], group_id: str, topics: list[str], changelog: str,
                 processor: Processor[S], batch_rows: int = 10_000, flush_seconds: float = 1.0,
                 consumer_overrides: dict[str, Any] | None = None, live_lag_seconds: float = 3600.0,
                 idle_seconds: float = 2.0, pseudonymizer: Pseudonymizer | None = None,
                 clock: Clock = SYSTEM, state_dir: Path | None = None,
                 state_cache_customers: int = DEFAULT_CACHE_CUSTOMERS) -> None:
        self.hosted = hosted(processor)  # every hook resolved once, defaults filled (streams/host/contract.py)
        self.erasures = None if pseudonymizer is None else Erasures(
            pseudonymizer, f"processor:{self.hosted.name if self.hosted.named else changelog}")
        if self.erasures is not None:
            topics = [*topics, PRIVACY_REQUESTS]
            self.hosted.give_erasures(self.erasures.erased_subject)
        self._timed = self.hosted.timed
        self._clock = clock
        overrides = {"enable.partition.eof": True} if self._timed else {}  # an input at its end does not hold timers
        super().__init__(consumer_config(kafka_config, group_id, **overrides, **(consumer_overrides or {})), topics,
                         batch_rows)
        self.processor = self.hosted.processor
        self.changelog = changelog
        self.flush_seconds = flush_seconds
        self.stats = WorkerStats()
        self.restore_progress = RestoreProgress()
        self.stores: dict[int, dict[str, Entry[S]]] = {}  # a CachedStore per partition when state_dir is set
        # Disk-backed state (streams/state_store/): <state_dir>/<changelog>/<partition>, a bounded cache of states.
        self.state_dir = state_dir
        self.state_cache_customers = state_cache_customers
        self._local_flushes = PendingFlushes()
        self._kafka = kafka_config
        self._producer = Producer({**kafka_config, "partitioner": PARTITIONER, "logger": CLIENT_LOGGER,
                                   "linger.ms": 5, "batch.num.messages": 10_000,
                                   "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False})
        self._dirty: dict[int, set[str]] = {}
        self._positions: dict[tuple[str, int], int] = {}
        self._last_flush = clock.monotonic()
        self.checkpoint = Checkpoint()  # the commit sequence and its invariants (streams/host/checkpoint.py)
        self._timers: dict[int, TimerQueue] = {}
        self._clock_parts: set[tuple[str, int]] = set()  # assigned input partitions the watermark waits for
        self._newest: dict[tuple[str, int], int] = {}  # their newest event time (ms)
        self._at_end: dict[tuple[str, int], float] = {}  # input partition -> when it reported its end (monotonic)
        self._idle_seconds = idle_seconds
        self._live_lag_ms = round(live_lag_seconds * 1000)
        self.live = False
        self.watermark_ms: int | None = None

    def start(self) -> None:
        """Make sure the changelog exists (co-partitioned with the inputs), then join the group."""
        ensure_compacted(self._kafka, self.changelog, self.topics[0])
        super().start()

    # -- membership -------------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        new = sorted({tp.partition for tp in partitions} - set(self.stores))
        if new:
            self.stores.update(self._restore(new))
            if self.erasures is not None:
                self._catch_up_privacy(new)
            self._share_cache()
            for p in new:
                self._dirty.setdefault(p, set())
                if self._timed:
                    queue = self._timers[p] = TimerQueue()
                    for key, deadline in deadlines(self.stores[p], self.hosted.next_timer):
                        queue.set(key, deadline)
        if self._timed:
            self._clock_parts |= {(tp.topic, tp.partition) for tp in partitions if tp.topic in self.clock_topics}
            if new:
                # The clock so far left these partitions out: their restored keys may still have records to
                # re-read (after their last owner's last commit) that move their timers. It starts again,
                # held until every assigned input partition has said something.
                self.watermark_ms = None

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.flush()
        for p in {tp.partition for tp in partitions}:
            self._close_store(p)
            self._dirty.pop(p, None)
            self._timers.pop(p, None)
            if self.erasures is not None:
                self.erasures.forget(p)
        for tp in partitions:
            part = (tp.topic, tp.partition)
            self._clock_parts.discard(part)
            self._newest.pop(part, None)
            self._at_end.pop(part, None)

    @property
    def clock_topics(self) -> frozenset[str]:
        """The topics whose records carry event time (``processor.clock_topics``, default: all consumed)."""
        return self.hosted.clock_topics(self.topics) - {PRIVACY_REQUESTS}

    def _restore(self, partitions: list[int]) -> dict[int, dict[str, Entry[S]]]:
        """Read the changelog partitions to their ends (partition EOF); the last record per key wins."""
        started = self._clock.monotonic()
        if self.state_dir is not None:
            return self._restore_local(partitions, started)
        reader = end_reader(self._kafka, f"{self.changelog}-restore", **{"fetch.queue.backoff.ms": 10})
        progress = self.restore_progress
        progress.begin(partitions, _changelog_size(reader, self.changelog, partitions))
        stores: dict[int, dict[str, Entry[S]]] = {p: {} for p in partitions}

        def restored(msg: Message) -> None:
            progress.advance()
            store = stores[msg.partition()]
            key = msg.key().decode()
            if self.erasures is not None and self.erasures.restored(msg.partition(), key):
                return
            if msg.value() is None:
                store.pop(key, None)
            else:
                store[key] = restore(msg.value())

        try:
            read_until_end(reader, [TopicPartition(self.changelog, p, OFFSET_BEGINNING) for p in partitions], restored)
        finally:
            reader.close()
            progress.end()
        count = sum(map(len, stores.values()))
        self.stats.restored_keys += count
        self.stats.restore_records_read += progress.records
        log.info("restored %d keys of %s%s in %.2fs", count, self.changelog, partitions,
                 self._clock.monotonic() - started)
        return stores

    # -- processing -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> WorkerStats:  # type: ignore[override]
        super().run(stop)
        return self.stats

    def flush_due(self) -> bool:
        return self._clock.monotonic() - self._last_flush >= self.flush_seconds

    def handle(self, messages: list[Message]) -> None:
        processor, hosted, produce = self.processor, self.hosted, self._produce
        timed, timers = self._timed, self._timers
        for msg in messages:
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error().str())
                elif timed:
                    self._at_end.setdefault((msg.topic(), msg.partition()), self._clock.monotonic())
                continue
            topic, partition, offset = intern(msg.topic()), msg.partition(), msg.offset()
            self.stats.consumed += 1
            self.stats.consumed_by_topic[topic] += 1
            raw_key = msg.key()
            store = self.stores.get(partition)
            if store is None:  # not assigned any more (revoked mid-batch): its offset is not ours to commit
                continue
            self._positions[(topic, partition)] = offset + 1  # read, whatever follows: committed past it
            if raw_key is None and topic in EVENT_TOPICS:
                # A keyless input record sits on a random partition, not its customer's: no state here can
                # take it (it would make a customer "" of every keyless record; the sink dead-letters it as
                # missing_key). Counted, never processed.
                self.stats.keyless_refused += 1
                if self.stats.keyless_refused & (self.stats.keyless_refused - 1) == 0:  # 1st, 2nd, 4th, ...
                    log.warning("%d keyless input records not processed (latest %s[%d]@%d): producers must key "
                                "records by customer_id", self.stats.keyless_refused, topic, partition, offset)
                continue
            key = raw_key.decode("utf-8", "replace") if raw_key else ""
            if topic == PRIVACY_REQUESTS and self.erasures is not None:
                self._erase(partition, offset, msg.value())
                continue
            if msg.value() is None:  # a tombstone (an erased profile) is no event: it must not make a state
                continue
            entry = store.get(key)
            if entry is None and topic not in EVENT_TOPICS and self.erasures is not None \
                    and self.erasures.suppressed(key):
                # Another processor's output about an erased customer, made before that processor
                # applied the erasure (a trigger in flight): its outputs (a blocked decision) go
                # out, but it must not bring the customer back as a state.
                for output in self._process(hosted.new_state(key), msg, raw_key) or ():
                    produce(*output)
                self.stats.suppressed_in_flight += 1
                continue
            if entry is None and timed and topic in EVENT_TOPICS:
                # A new key: its state is kept only if the processor accepted the record. A refused one
                # (last_event_ms None) makes no state, so no changelog record: a hostile key (10 MB, or
                # one per junk record) can neither fail the changelog write nor pile up empty states.
                fresh = Entry(hosted.new_state(key))
                outputs = self._process(fresh.state, msg, raw_key)
                for output in outputs or ():
                    produce(*output)
                if outputs is None or processor.last_event_ms is None:  # type: ignore[attr-defined]
                    self.stats.refused_without_state += 1
                    continue
                entry = store[key] = fresh
                entry.applied[topic] = offset
                self._dirty[partition].add(key)
                timers[partition].set(key, hosted.next_timer(entry.state))
                self._observe(topic, partition, processor.last_event_ms)  # type: ignore[attr-defined]
                continue
            if entry is None:
                entry = store[key] = Entry(hosted.new_state(key))
            elif entry.applied.get(topic, -1) >= offset:
                self.stats.skipped_redelivered += 1
                continue
            outputs = self._process(entry.state, msg, raw_key)
            for output in outputs or ():
                produce(*output)
            entry.applied[topic] = offset
            self._dirty[partition].add(key)  # also after a failure: what the state holds now is what restores
            if timed and outputs is not None:
                timers[partition].set(key, hosted.next_timer(entry.state))
                self._observe(topic, partition, processor.last_event_ms)  # type: ignore[attr-defined]

    def _process(self, state: S, msg: Message, raw_key: bytes | None) -> list[Output] | None:
        """The processor's outputs for one record; None when it raised, after dead-lettering the record.

        One record the processor cannot handle must not stop the stream: the worker would die, be
        restarted, read the same record and die again. The record goes to ``dead-letters``
        (reason ``processing_failed``; the detail names the processor and the exception type, never
        its message, which may quote the record) and the worker goes on. The state keeps what the
        processor changed before it raised, and is written to the changelog like any other change.
        """
        topic, partition, offset, value = msg.topic(), msg.partition(), msg.offset(), msg.value()
        try:
            return self.hosted.process(state, topic, value, raw_key)
        except Exception as exc:  # any processor failure: dead-lettered, never fatal
            name = self.hosted.name
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            letter = dead_letter(topic, partition, offset, raw_key, value, PROCESSING_FAILED,
                                 f"processor {name} raised {type(exc).__name__} at {where}")
            self._produce(DEAD_LETTERS, letter.dead_letter_id.encode(), letter.model_dump_json().encode())
            self.stats.processing_failed += 1
            log.error("processor %s raised %s at %s on %s[%d]@%d: record dead-lettered (%s)", name,
                      type(exc).__name__, where, topic, partition, offset, letter.dead_letter_id)
            return None

    def _erase(self, partition: int, offset: int, value: bytes | None) -> None:
        """Apply one privacy request (streams/erasure.py); its tombstones go out with the next flush."""
        assert self.erasures is not None
        outputs = self.erasures.apply(partition, offset, value, self.stores[partition], self._timers.get(partition),
                                      self._dirty[partition], self.hosted)
        for output in outputs:
            self._produce(*output)

    def _catch_up_privacy(self, partitions: list[int]) -> None:
        """Apply the requests not yet committed on newly assigned partitions, before any of their input records."""
        assert self._consumer is not None
        consumer = self._consumer
        committed = retry_until_stalled(  # no fixed deadline: a busy broker is asked again
            "committed privacy-request offsets",
            lambda: consumer.committed([TopicPartition(PRIVACY_REQUESTS, p) for p in partitions],
                                       timeout=REQUEST_SECONDS), (KafkaException,))
        reader = end_reader(self._kafka, f"{self.changelog}-privacy", **{"fetch.queue.backoff.ms": 10})

        def apply(msg: Message) -> None:
            self._dirty.setdefault(msg.partition(), set())
            self._erase(msg.partition(), msg.offset(), msg.value())
            self._positions[(PRIVACY_REQUESTS, msg.partition())] = msg.offset() + 1

        try:
            read_until_end(reader, [TopicPartition(PRIVACY_REQUESTS, tp.partition,
                                                   tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                                    for tp in committed], apply, batch=1000)
        finally:
            reader.close()

    def _observe(self, topic: str, partition: int, event_ms: int | None) -> None:
        part = (topic, partition)
        self._at_end.pop(part, None)
        if event_ms is None or part not in self._clock_parts:
            return
        if event_ms > self._newest.get(part, event_ms - 1):
            self._newest[part] = event_ms
        if not self.live and self._clock.wall_ms() - event_ms <= self._live_lag_ms:
            self.live = True
            log.info("records are live: timers also follow the wall clock")

    def clock(self) -> int | None:
        """The timers' clock: the event-time watermark, and when live at least the processor's live clock."""
        parts = self._clock_parts
        at_end = self._at_end
        if parts and len(at_end) >= len(parts) and all(part in at_end for part in parts) \
                and max(at_end[part] for part in parts) <= self._clock.monotonic() - self._idle_seconds:
            watermark = max(self._newest.values(), default=None)  # every input at its end, for a while
        else:
            # An input at its end still holds the clock at its newest event (the end reported may be
            # early, and its next record may be older than the others' newest); one that never had a
            # record and is at its end (an empty topic) does not.
            waiting = [self._newest.get(part) for part in parts if part in self._newest or part not in at_end]
            # None while an input partition has said nothing yet: it may still hold earlier events.
            watermark = None if not waiting or None in waiting else min(waiting)  # type: ignore[type-var]
        if watermark is not None and (self.watermark_ms is None or watermark > self.watermark_ms):
            self.watermark_ms = watermark
        if not self.live:
            return self.watermark_ms
        live = self.hosted.live_clock(self._clock.wall_ms())
        return live if self.watermark_ms is None else max(self.watermark_ms, live)

    def fire_timers(self) -> int:
        """Call ``due`` for every key whose next timer is before the clock; return how many keys fired."""
        now = self.clock()
        if now is None:
            return 0
        hosted, fired = self.hosted, 0
        for partition, queue in self._timers.items():
            store = self.stores.get(partition)
            if store is None:
                continue
            for key in queue.pop_due(now):
                entry = store.get(key)
                if entry is None:
                    continue
                for output in hosted.due(entry.state, now):
                    self._produce(*output)
                queue.set(key, hosted.next_timer(entry.state))
                self._dirty[partition].add(key)
                fired += 1
        self.stats.timer_firings += fired
        return fired

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
                 on_offset: Callable[[int], None] | None = None) -> None:
        sequence = self.checkpoint.produced()
        delivered = partial(self._on_delivery, sequence, on_offset)
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value, key, on_delivery=delivered)
                else:
                    self._producer.produce(topic, value, key, partition=partition, on_delivery=delivered)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _on_delivery(self, sequence: int, on_offset: Callable[[int], None] | None, err: KafkaError | None,
                     msg: Message) -> None:
        self.checkpoint.acknowledged(sequence, None if err is None else f"{msg.topic()}: {err.str()}")
        if err is None and on_offset is not None:
            on_offset(msg.offset())

    def flush(self) -> None:
        """Steps 1-3 of the commit protocol, finished (acknowledged and committed) before it returns."""
        self._write()
        remaining = flush_following(self._producer)
        self._settle()
        self.checkpoint.finished(remaining)

    def flush_soon(self) -> None:
        """Steps 1-2 now; step 3 (the commit) once the broker has acknowledged what they produced.

        The worker goes on with the next records meanwhile instead of waiting a broker round
        trip per flush; ``poll`` commits each flush's offsets as soon as every record produced
        up to that flush is acknowledged, in flush order.
        """
        self._write()
        self._settle()

    def poll(self, timeout: float) -> int:
        """Take a batch, then fire the timers the clock has passed (and flush when due); commit what is acknowledged."""
        taken = super().poll(timeout)
        if self._timed:
            self.fire_timers()
        if self.checkpoint.waiting:
            self._settle()
        return taken

    def _write(self) -> None:
        """Produce the changed keys' changelog records and profiles; queue the offsets they cover for commit."""
        for partition, keys in self._dirty.items():
            store = self.stores[partition]
            if self.erasures is not None:  # tombstones and suppression markers before any newer state
                for key, value in self.erasures.pending_writes(partition):
                    self._write_changelog(partition, store, key, value, None)
            for key in keys:
                entry = store[key]
                self._write_changelog(partition, store, key, snapshot(entry), entry.state)
                for output in self.hosted.emit(key, entry.state):
                    self._produce(*output)
                    self.stats.outputs += 1
            keys.clear()
        if self._positions:
            self.checkpoint.close(self._positions)
            self._positions = {}
        if self.state_dir is not None:
            self._local_flushes.close(self.checkpoint.sequence)
            for store in self.stores.values():  # no key has unwritten changes now: evicting loses nothing
                self.stats.state_evicted += store.trim()  # type: ignore[attr-defined]
        self.stats.flushes += 1
        self._last_flush = self._clock.monotonic()

    def _write_changelog(self, partition: int, store: Any, key: str, value: bytes | None, state: Any) -> None:
        """Produce one changelog record; a disk-backed store writes it locally once acknowledged."""
        on_offset = None
        if isinstance(store, CachedStore):
            timer = None
            if self._timed and state is not None:
                timer = self.hosted.next_timer(state)
            on_offset = self._local_flushes.note(store, partition, key, value, timer)
        self._produce(self.changelog, key.encode(), value, partition, on_offset)
        self.stats.changelog_records += 1

    def _restore_local(self, partitions: list[int], started: float) -> dict[int, dict[str, Entry[S]]]:
        """Open the partitions' local stores and replay the changelog after their checkpoints."""
        assert self.state_dir is not None
        next_timer = self.hosted.next_timer if self._timed else None
        restored = restore_partitions(self._kafka, self.changelog, partitions, self.state_dir,
                                      self.state_cache_customers, next_timer, self.restore_progress, self.erasures)
        self.stats.restore_records_read += restored.records
        self.stats.stores_rebuilt += len(restored.rebuilt)
        keys = sum(store.local.count() for store in restored.stores.values())
        self.stats.restored_keys += keys
        log.info("restored %d keys of %s%s in %.2fs: the local stores, and %d changelog records replayed after their "
                 "checkpoints%s", keys, self.changelog, partitions, self._clock.monotonic() - started, restored.records,
                 f" (rebuilt from the beginning: {restored.rebuilt})" if restored.rebuilt else "")
        return restored.stores  # type: ignore[return-value]

    def _share_cache(self) -> None:
        """Split ``state_cache_customers`` evenly over the assigned partitions' stores."""
        stores = [s for s in self.stores.values() if isinstance(s, CachedStore)]
        for store in stores:
            store.capacity = max(1, self.state_cache_customers // len(stores))

    def _close_store(self, partition: int) -> None:
        store = self.stores.pop(partition, None)
        if isinstance(store, CachedStore):
            self._local_flushes.drop(partition)
            store.close()
            self._share_cache()

    def close(self) -> None:
        """Close the consumer, then the local stores (their flushes are on disk: ``run`` flushed first)."""
        super().close()
        for partition in list(self.stores):
            self._close_store(partition)

    def _settle(self) -> None:
        """Commit the queued offsets whose records are all acknowledged (a failed delivery raises: none committed)."""
        self._producer.poll(0)
        self._local_flushes.apply(self.checkpoint.oldest_unacknowledged(), self.stores)  # to disk before the commit
        offsets = self.checkpoint.committable()
        if offsets and self._consumer is not None:
            self.commit([TopicPartition(t, p, o) for (t, p), o in offsets.items()])


def _changelog_size(reader: Consumer, changelog: str, partitions: list[int]) -> int | None:
    """About how many records the changelog partitions hold (high minus low watermark), or None if unknown."""
    try:
        marks = [reader.get_watermark_offsets(TopicPartition(changelog, p), timeout=5) for p in partitions]
    except KafkaException:  # a broker slow to answer: the restore goes on without a total
        return None
    return sum(high - low for low, high in marks) if all(marks) else None
