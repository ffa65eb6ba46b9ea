"""Messages for the delivery tests, and a real delivery worker run in a thread until it is done."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Producer

from processors.messages.processor import MessagesProcessor
from processors.triggers.processor import TriggersProcessor
from streams.delivery import DeliveryWorker, Sender
from streams.sources.generator import generate
from tests.processors.messages.helpers import pipeline

Record = tuple[str, bytes | None, bytes]


def made_messages(count: int) -> list[Record]:
    """The first ``count`` messages the processors make from generated traffic (e-mail, in-app and push)."""
    records = [(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000))
               for r in generate(customers=30, days=6, seed=3)]
    _, made = pipeline(records, TriggersProcessor(), MessagesProcessor())
    return [(t, k, v) for t, k, v in made if t == "messages"][:count]


def produce_to_partition(kafka: dict[str, str], records: list[Record], partition: int = 0) -> None:
    """Every record on one partition, in order, so a worker's first poll takes them as one batch."""
    producer = Producer(kafka)
    for topic, key, value in records:
        producer.produce(topic, value, key, partition=partition)
    assert producer.flush(30) == 0, "records not acknowledged"


def deliver_all(kafka: dict[str, str], sender: Sender, group: str, expected: int, **options: Any) -> DeliveryWorker:
    """Run a real delivery worker in a thread until it recorded ``expected`` outcomes, then stop it."""
    return deliver_until(kafka, sender, group, lambda w: w.stats.outcomes.total() >= expected, **options)


def deliver_until(kafka: dict[str, str], sender: Sender, group: str, done: Callable[[DeliveryWorker], bool],
                  timeout: float = 120.0, **options: Any) -> DeliveryWorker:
    """Run a real delivery worker in a thread until ``done(worker)``, then stop it (flushed and committed)."""
    with running_worker(kafka, sender, group, **options) as worker:
        wait_for(lambda: done(worker), timeout, worker)
    return worker


def wait_for(condition: Callable[[], bool], timeout: float, worker: DeliveryWorker | None = None) -> None:
    """Wait until ``condition()``, following progress (a loaded machine is slower, never failing early)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {timeout:.0f} s: {worker.stats if worker else ''}"
        time.sleep(0.05)


@contextlib.contextmanager
def running_worker(kafka: dict[str, str], sender: Sender, group: str, **options: Any) -> Iterator[DeliveryWorker]:
    """A real delivery worker running in a thread while the block runs; stopped (flushed, committed) after it."""
    eager = options.pop("eager", None)  # False: batches as the consumer fills them (a budget is per batch)
    worker = DeliveryWorker(kafka, group, sender, **options)
    if eager is not None:
        worker.consume_eagerly = eager
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
        assert thread.is_alive(), "the delivery worker died"
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the delivery worker did not stop"
