"""The generator's traffic as a stream: the same records in the same order as ``Generator.records()``,
without building all of them first.

``Generator.records()`` runs every customer's journey, then sorts every record by event time:
2.4M events took 70 s and 1.8 GB before the first one could be fed. A customer's journey depends
only on its own seeded random stream; it starts at its signup time (the first draw of that stream),
and runs session by session (``_Journey.steps``), each session adding events at or after its start.
So the journeys advance together, in time: the one with the earliest next session steps next, and
a record is released once no journey, started or not, can still add an earlier one. Held at any
moment are the events already made but not yet due (an order's later steps), not the whole traffic.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime

from streams.sources.generator import DAY, Generator, IdentityMix, _Journey
from streams.sources.record import SourceRecord


def signup_ms(generator: Generator, n: int) -> int:
    """Customer ``n``'s signup time (ms): the first draw of its random stream, as ``_Journey.steps`` makes it."""
    first = random.Random(f"{generator.seed}/{n}").random()
    return generator.start_ms + int(first * generator.days * 0.6 * DAY)


def stream(customers: int = 2000, days: int = 30, seed: int = 7,
           start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
           identities: IdentityMix | None = None) -> Iterator[SourceRecord]:
    """``Generator(customers, days, seed, start, identities).records()``, record for record, produced as it is
    needed."""
    return stream_of(Generator(customers, days, seed, start, identities))


class _Running:
    """One customer's journey in progress: its steps, and the records it added not yet taken."""

    def __init__(self, generator: Generator, n: int) -> None:
        self.n = n
        self.times: list[int] = []
        self.records: list[SourceRecord] = []
        self.steps = _Journey(generator, n, self.times, self.records).steps()
        self.seq = 0  # how many records it has added so far (its next record's place in records() order)

    def take(self) -> Iterator[tuple[int, int, int, SourceRecord]]:
        """The records added since the last call, as heap entries sorted like ``records()`` sorts them."""
        for ms, record in zip(self.times, self.records, strict=True):
            yield ms, self.n, self.seq, record
            self.seq += 1
        self.times.clear()
        self.records.clear()


def stream_of(generator: Generator) -> Iterator[SourceRecord]:
    """``generator.records()`` as a stream (its ``truth`` fills as the journeys run)."""
    # Each journey's lower bound: no record it adds later sorts before (time, customer, next sequence).
    # A journey not started yet is bounded by its signup; a running one by its next session's start.
    bounds: list[tuple[int, int, int, _Running | None]] = [(signup_ms(generator, n), n, 0, None)
                                                           for n in range(generator.customers)]
    heapq.heapify(bounds)
    pending: list[tuple[int, int, int, SourceRecord]] = []
    released: tuple[int, int, int] = (-1, -1, -1)
    while bounds:
        ms, n, _, journey = heapq.heappop(bounds)
        journey = journey or _Running(generator, n)
        next_start = next(journey.steps, None)  # runs up to (not into) its next session
        for entry in journey.take():
            if entry[:3] < released:
                raise AssertionError(f"customer {n} added a record before one already released: {entry[:3]}")
            heapq.heappush(pending, entry)
        if next_start is not None:
            if next_start < ms:
                raise AssertionError(f"customer {n}'s sessions go back in time ({next_start} < {ms})")
            heapq.heappush(bounds, (next_start, n, journey.seq, journey))
        frontier = bounds[0][:3] if bounds else None
        while pending and (frontier is None or pending[0][:3] < frontier):
            entry = heapq.heappop(pending)
            released = entry[:3]
            yield entry[3]
