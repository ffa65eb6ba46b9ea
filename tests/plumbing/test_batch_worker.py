"""The shared consumer loop: a commit the group refuses after a rebalance is dropped, not fatal."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from confluent_kafka import Message, Producer, TopicPartition

from plumbing.batch_worker import BatchWorker, consumer_config
from streams.broker import EmbeddedBroker
from streams.topics import TopicSpec, ensure_topics


class _Taker(BatchWorker):
    """Takes records and notes them; commits only when told to."""

    def __init__(self, config: dict[str, Any], topics: list[str]) -> None:
        super().__init__(config, topics, batch_rows=100)
        self.taken: list[Message] = []

    def handle(self, messages: list[Message]) -> None:
        self.taken += [m for m in messages if m.error() is None]

    def flush(self) -> None:
        pass

    def flush_due(self) -> bool:
        return False


def _until(condition: Any, what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


def test_a_commit_after_the_group_moved_on_is_dropped_and_the_records_are_read_again(
        caplog: pytest.LogCaptureFixture) -> None:
    """A member that does not poll past ``max.poll.interval.ms`` (6 s here, 30 min in the workers) is evicted; its next
    commit fails with UNKNOWN_MEMBER_ID. Before, that exception ended the worker (a `journey run` under
    load failed with "scoring worker exited with code 1"); now the commit is counted and logged, the
    worker goes on, rejoins, and reads again the records the lost commit covered (at least once)."""
    with EmbeddedBroker() as broker:
        kafka = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(kafka, [TopicSpec("lost", 2)])
        producer = Producer(kafka)
        for i in range(10):
            producer.produce("lost", b"x", str(i).encode(), partition=i % 2)
        producer.flush(30)
        worker = _Taker(consumer_config(kafka, "lost-group", **{"max.poll.interval.ms": 6000}), ["lost"])
        worker.start()
        try:
            _until(lambda: worker.poll(0.5) >= 0 and len(worker.taken) == 10, "the records")
            time.sleep(10.0)  # past max.poll.interval.ms without polling: the group evicts the member
            with caplog.at_level(logging.WARNING, logger="plumbing.batch_worker"):
                worker.commit([TopicPartition("lost", 0, 5), TopicPartition("lost", 1, 5)])
            assert worker.commits_lost == 1
            assert "lost its partitions to a rebalance" in caplog.text
            worker.taken.clear()
            _until(lambda: worker.poll(0.5) >= 0 and len(worker.taken) >= 10, "the records to be read again")
            assert sorted(int(m.key()) for m in worker.taken) == list(range(10))
        finally:
            worker.close()


def test_other_commit_errors_still_raise() -> None:
    """Only a lost membership is forgiven: a commit to a partition the broker does not have still fails."""
    with EmbeddedBroker() as broker:
        kafka = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(kafka, [TopicSpec("kept", 1)])
        worker = _Taker(consumer_config(kafka, "kept-group"), ["kept"])
        worker.start()
        try:
            _until(lambda: worker.poll(0.5) >= 0 and bool(worker._consumer and worker._consumer.assignment()),
                   "the assignment")
            with pytest.raises(Exception):  # noqa: B017 - whatever librdkafka reports, it must surface
                worker.commit([TopicPartition("no-such-topic", 0, 1)])
            assert worker.commits_lost == 0
        finally:
            worker.close()


def test_workers_keep_their_partitions_through_a_long_batch() -> None:
    """A loaded machine made one scorer turn last over librdkafka's 5-minute default and the group evicted it."""
    assert consumer_config({}, "g")["max.poll.interval.ms"] >= 30 * 60 * 1000
    assert consumer_config({}, "g", **{"max.poll.interval.ms": 6000})["max.poll.interval.ms"] == 6000
