"""A features worker SIGKILLed in the middle of a replay and restarted ends with exactly the batch features."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from processors.features.build import build_features
from schemas.registry import INPUT_TOPICS
from streams.progress import GroupProgress
from streams.sources import open_source
from streams.stateful import StatefulWorker
from streams.topics import CHANGELOGS
from tests.conftest import Backend, produce
from tests.processors.features.compare import differences, flat
from tests.processors.features.reference import taobao_features

pytestmark = pytest.mark.integration


def latest_profiles(kafka: dict[str, str], partitions: int) -> dict[str, dict[str, Any]]:
    """The last customer-features record per customer (what compaction keeps)."""
    reader = Consumer({**kafka, "group.id": "profile-reader", "enable.partition.eof": True})
    reader.assign([TopicPartition("customer-features", p, OFFSET_BEGINNING) for p in range(partitions)])
    pending, latest = set(range(partitions)), {}
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for msg in reader.consume(10_000, 0.2):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                continue
            record = orjson.loads(msg.value())
            latest[record["customer_id"]] = flat(record)
    reader.close()
    assert not pending, "customer-features not read to its end"
    return latest


def test_sigkill_mid_replay_then_restart_gives_the_batch_features(backend: Backend, datasets: Path,
                                                                   tmp_path: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
    total = sum(producer.end_offsets.values())
    env = {**os.environ, "JOURNEY_KAFKA_BOOTSTRAP": backend.kafka["bootstrap.servers"],
           "JOURNEY_GROUP_PREFIX": "restart",
           "JOURNEY_IDENTITY_RESOLUTION": "false",  # features read the raw inputs (no identity stage here)
           "JOURNEY_PROCESSOR_FLUSH_SECONDS": "0.2",
           "JOURNEY_DATA_DIR": str(tmp_path)}
    progress = GroupProgress(backend.kafka, "restart-features")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "features"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    worker = start()
    deadline = time.monotonic() + 120
    while progress.remaining(producer.end_offsets) > total * 0.6:
        assert worker.poll() is None, "the features worker died on its own"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)
    at_kill = progress.remaining(producer.end_offsets)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert 0 < at_kill < total, "killed in the middle of the replay"

    worker = start()
    deadline = time.monotonic() + 180
    while progress.remaining(producer.end_offsets):
        assert worker.poll() is None, "the restarted worker died"
        assert time.monotonic() < deadline, "the restarted worker did not catch up"
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    progress.close()

    mismatches = differences(latest_profiles(backend.kafka, backend.partitions), taobao_features(path))
    assert not mismatches, f"{len(mismatches)} differences after the restart, first: {mismatches[:5]}"


class CrashAfterChangelog(StatefulWorker):  # type: ignore[type-arg]
    """The real worker, made to die at the worst moment: state and profiles written, offsets not committed."""

    def commit(self, offsets: list[TopicPartition]) -> None:
        if self.stats.consumed >= 30_000:
            raise RuntimeError("injected crash between changelog write and commit")
        super().commit(offsets)


def test_crash_between_changelog_and_commit_counts_nothing_twice(backend: Backend, datasets: Path) -> None:
    path = datasets / "taobao_userbehavior_sample.csv"
    records, _ = open_source(f"taobao:{path}")
    producer = produce(backend.kafka, [(r.topic, r.key, r.value) for r in records])
    topics, changelog = list(INPUT_TOPICS), CHANGELOGS["features"]
    crashing = CrashAfterChangelog(backend.kafka, "crash-features", topics, changelog, build_features(),
                                   batch_rows=5000, flush_seconds=0.05)
    stop = threading.Event()
    with pytest.raises(RuntimeError, match="injected crash"):
        crashing.run(stop)
    redelivered = GroupProgress(backend.kafka, "crash-features")
    assert 0 < redelivered.remaining(producer.end_offsets) < len(records)
    redelivered.close()

    worker = StatefulWorker(backend.kafka, "crash-features", topics, changelog, build_features(), flush_seconds=0.2)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    progress = GroupProgress(backend.kafka, "crash-features")
    deadline = time.monotonic() + 180
    while progress.remaining(producer.end_offsets):
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.2)
    stop.set()
    thread.join(60)
    progress.close()
    assert worker.stats.skipped_redelivered > 0, "the batch written before the crash came back and was skipped"
    mismatches = differences(latest_profiles(backend.kafka, backend.partitions), taobao_features(path))
    assert not mismatches, f"{len(mismatches)} differences after the crash, first: {mismatches[:5]}"
