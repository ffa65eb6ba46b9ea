"""The generator's traffic as a stream: the same records in the same order as ``Generator.records()``,
without building all of them first.

``Generator.records()`` runs every customer's journey, then sorts every record by event time:
2.4M events took 70 s and 1.8 GB before the first one could be fed. A customer's journey depends
only on its own seeded random stream, and starts at its signup time, the first draw of that stream
(``signup = start + rand() * days * 0.6 days``): so customers are run in signup order, and a record
is released as soon as no journey not yet run can produce an earlier one. The first record leaves
after one journey; held are only the records of customers already signed up, not yet due.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime

from streams.sources.generator import DAY, Generator, _Journey
from streams.sources.record import SourceRecord


def signup_ms(generator: Generator, n: int) -> int:
    """Customer ``n``'s signup time (ms): the first draw of its random stream, as ``_Journey.run`` makes it."""
    first = random.Random(f"{generator.seed}/{n}").random()
    return generator.start_ms + int(first * generator.days * 0.6 * DAY)


def stream(customers: int = 2000, days: int = 30, seed: int = 7,
           start: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> Iterator[SourceRecord]:
    """``Generator(customers, days, seed, start).records()``, record for record, produced as it is needed."""
    return stream_of(Generator(customers, days, seed, start))


def stream_of(generator: Generator) -> Iterator[SourceRecord]:
    """``generator.records()`` as a stream (its ``truth`` fills as the journeys run)."""
    starts = sorted((signup_ms(generator, n), n) for n in range(generator.customers))
    # Heap entries sort like records() does: by time, then by (customer, sequence), its stable order.
    pending: list[tuple[int, int, int, SourceRecord]] = []
    for position, (signup, n) in enumerate(starts):
        times: list[int] = []
        records: list[SourceRecord] = []
        _Journey(generator, n, times, records).run()
        if times and min(times) < signup:
            raise AssertionError(f"customer {n} has an event before its signup: the stream's order would differ")
        for seq, (ms, record) in enumerate(zip(times, records, strict=True)):
            heapq.heappush(pending, (ms, n, seq, record))
        following = starts[position + 1] if position + 1 < len(starts) else None
        while pending and (following is None or pending[0][:2] < following):
            yield heapq.heappop(pending)[3]
