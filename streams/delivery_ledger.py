"""The delivery ledger: which message ids an adapter has delivered, checked before every send.

Where it lives: one append-only file per adapter in the data directory,
``<data_dir>/delivery-ledger/<group>.ids`` (``<group>`` is the adapter's consumer group,
``<prefix>-deliver-<adapter>``), one line per message delivered: its id and the attempts it
took. Chosen because it is the one store that outlives everything the issue names on this project's deployment: a worker
restart, a rebalance (every worker of the adapter on the machine appends to and reads the same
file, and re-reads what others appended before each send), and a new ``journey run`` on the
same data directory, whose embedded broker keeps nothing between runs (so a ledger topic
would start empty) and whose chDB is owned by the sink's process (so the ``deliveries``
table cannot be asked from the delivery worker). Workers on several machines share it by
mounting the same data directory (a ReadWriteMany volume); see the README.

On a deployment whose workers do not share a data directory (Kubernetes pods), the setting
``delivery_ledger = "topic"`` keeps it on a compacted Kafka topic instead (:class:`TopicLedger`).

The guarantee: a message id in the ledger is never sent again by that adapter, for as long as
the file is kept (it grows by about 40 bytes per message). An id is appended (one ``write``
of a whole line, atomic under ``O_APPEND``) right after the receiver accepted the message and
fsynced before the worker commits its offsets; the window left is a crash between a
receiver's acceptance and that append (one message per worker, sent again) or a power loss
before the fsync (the batch since the last commit: its offsets are not committed either).
"""

from __future__ import annotations

import os
from pathlib import Path

from confluent_kafka import Producer

from plumbing.produce import CLIENT_LOGGER
from streams.topic_reader import read_to_end
from streams.topics import ensure_compacted


class FileLedger:
    """Delivered message ids of one adapter, shared through an append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._ids: dict[str, int] = {}  # message id -> attempts it took
        self._read = 0
        self._dirty = False
        self.refresh()

    def __len__(self) -> int:
        return len(self._ids)

    def refresh(self) -> None:
        """Read what any worker appended since the last read (whole lines only)."""
        size = os.fstat(self._fd).st_size
        if size <= self._read:
            return
        data = os.pread(self._fd, size - self._read, self._read)
        end = data.rfind(b"\n") + 1
        for line in data[:end].split(b"\n"):
            if line:
                message_id, _, attempts = line.decode().partition(" ")
                self._ids[message_id] = int(attempts) if attempts.isdigit() else 1
        self._read += end

    def delivered(self, message_id: str) -> bool:
        """Whether any worker of this adapter has delivered ``message_id`` (re-reads the file when unsure)."""
        if message_id in self._ids:
            return True
        self.refresh()
        return message_id in self._ids

    def attempts(self, message_id: str) -> int:
        """The attempts the delivery of ``message_id`` took (1 when not known)."""
        return self._ids.get(message_id, 1)

    def record(self, message_id: str, attempts: int = 1, partition: int | None = None) -> None:
        """Append ``message_id``: it was delivered, after ``attempts`` attempts (``partition`` is not needed)."""
        os.write(self._fd, f"{message_id} {attempts}\n".encode())
        self._ids[message_id] = attempts
        self._dirty = True

    def sync(self) -> None:
        """Make the appended ids durable (before the offsets that cover them are committed)."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        self.sync()
        os.close(self._fd)


def ledger_path(data_dir: Path, group: str) -> Path:
    """The ledger file of the delivery consumer group ``group`` under ``data_dir``."""
    return data_dir / "delivery-ledger" / f"{group}.ids"


class TopicLedger:
    """Delivered message ids of one delivery group on a compacted topic, for workers on several machines.

    ``<group>-ledger`` (created like the retry topic, as many partitions as ``messages``) holds one
    record per delivered message, key the message id, value the attempts, on the partition number
    of the message's ``messages`` partition. A worker reads the ledger partitions of the partitions
    it is assigned, to their end, before their records come (``load``), so after a rebalance or a
    restart it knows what any worker delivered from them. Each record is flushed right after the
    send it records (``record``): a crash can re-send only the message whose record was in flight.
    Kept as long as the compacted topic (retention ``-1``): as durable as the Kafka cluster.
    """

    def __init__(self, kafka_config: dict[str, str], topic: str) -> None:
        self.kafka, self.topic = kafka_config, topic
        self._ids: dict[str, int] = {}
        self._producer = Producer({**kafka_config, "logger": CLIENT_LOGGER, "linger.ms": 0})

    def ensure(self, like: str = "messages") -> None:
        ensure_compacted(self.kafka, self.topic, like=like)

    def load(self, partitions: list[int]) -> None:
        """Read the ledger ``partitions`` to their end (partition EOF) into memory."""
        for _, key, value in read_to_end(self.kafka, self.topic, partitions):
            if key is not None and value is not None:
                self._ids[key.decode()] = int(value) if value.isdigit() else 1

    def delivered(self, message_id: str) -> bool:
        return message_id in self._ids

    def attempts(self, message_id: str) -> int:
        return self._ids.get(message_id, 1)

    def record(self, message_id: str, attempts: int = 1, partition: int | None = None) -> None:
        """Produce the record on ``partition`` (the message's) and wait for its acknowledgement."""
        errors: list[str] = []

        def acked(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        extra = {} if partition is None else {"partition": partition}
        self._producer.produce(self.topic, str(attempts).encode(), message_id.encode(), on_delivery=acked, **extra)
        if self._producer.flush(30) or errors:
            raise RuntimeError(f"ledger record for {message_id} not stored: {errors or 'timeout'}")
        self._ids[message_id] = attempts

    def sync(self) -> None:
        self._producer.flush(30)

    def close(self) -> None:
        self.sync()


def ledger_topic(group: str) -> str:
    """The ledger topic of a delivery consumer group, e.g. ``journey-deliver-webhook-ledger``."""
    return f"{group}-ledger"
