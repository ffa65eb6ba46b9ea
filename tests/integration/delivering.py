"""Messages for the delivery tests, and a real delivery worker run in a thread until it is done."""

from __future__ import annotations

import threading
import time
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
    worker = DeliveryWorker(kafka, group, sender, **options)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while worker.stats.outcomes.total() < expected and time.monotonic() < deadline:
        assert thread.is_alive(), "the delivery worker died"
        time.sleep(0.1)
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the delivery worker did not stop"
    return worker
