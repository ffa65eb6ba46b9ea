"""The generator streamed (issue 19, item 5): the same records in the same order as ``Generator.records()``,
the first one before any journey is complete, and a small fraction of the memory held."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterable

import pytest

from streams.sources.generator import Generator
from streams.sources.generator_stream import stream, stream_of
from streams.sources.record import SourceRecord


@pytest.mark.parametrize(("customers", "days", "seed"), [(60, 5, 11), (400, 30, 7), (7, 2, 1), (0, 3, 1),
                                                           (150, 90, 3)])
def test_the_stream_is_records_record_for_record(customers: int, days: int, seed: int) -> None:
    expected = Generator(customers, days, seed).records()
    got = list(stream(customers, days, seed))
    assert len(got) == len(expected)
    assert [(r.topic, r.key, r.value, r.event_time) for r in got] == [
        (r.topic, r.key, r.value, r.event_time) for r in expected]


def test_the_first_record_leaves_before_any_journey_is_complete() -> None:
    generator = Generator(500, 30, 7)
    records = stream_of(generator)
    next(records)
    assert generator.truth.signup_at == {}  # records() runs all 500 journeys to their end before its first record
    rest = sum(1 for _ in records)
    assert len(generator.truth.signup_at) == 500 and rest + 1 == len(Generator(500, 30, 7).records())


def peak_bytes(records: Callable[[], Iterable[SourceRecord]]) -> tuple[int, int]:
    """(records seen, peak bytes allocated) while consuming ``records()`` one at a time, as a feed does."""
    tracemalloc.start()
    try:
        count = sum(1 for _ in records())
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_stream_holds_much_less_than_the_materialised_records() -> None:
    listed, list_peak = peak_bytes(lambda: Generator(1500, 30, 7).records())
    streamed, stream_peak = peak_bytes(lambda: stream(1500, 30, 7))
    assert streamed == listed
    assert stream_peak < 0.15 * list_peak, (stream_peak, list_peak)  # measured: 0.09
