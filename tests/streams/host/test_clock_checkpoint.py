"""The injected clock and the checkpoint's invariants (pure logic: no broker)."""

from __future__ import annotations

import pytest

from streams.host.checkpoint import Checkpoint
from streams.host.clock import ManualClock, SystemClock


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(wall_ms=1_000, monotonic=5.0)
    assert (clock.wall_ms(), clock.monotonic()) == (1_000, 5.0)
    clock.advance(2.5)
    assert (clock.wall_ms(), clock.monotonic()) == (3_500, 7.5)
    clock.set_wall_ms(0)
    assert (clock.wall_ms(), clock.monotonic()) == (0, 7.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_the_system_clock_reads_the_machine() -> None:
    import time

    clock = SystemClock()
    assert abs(clock.wall_ms() - time.time() * 1000) < 1000
    assert clock.monotonic() <= time.monotonic()


def test_offsets_commit_only_once_every_record_before_their_close_is_acknowledged_oldest_first() -> None:
    checkpoint = Checkpoint()
    first = [checkpoint.produced() for _ in range(3)]
    checkpoint.close({("t", 0): 10})
    second = checkpoint.produced()
    checkpoint.close({("t", 0): 20, ("t", 1): 5})
    assert checkpoint.committable() == {}
    checkpoint.acknowledged(second)  # the younger checkpoint's record: still waits for the older ones
    assert checkpoint.committable() == {}
    for sequence in first[:2]:
        checkpoint.acknowledged(sequence)
    assert checkpoint.committable() == {}
    checkpoint.acknowledged(first[2])
    assert checkpoint.committable() == {("t", 0): 20, ("t", 1): 5}
    assert not checkpoint.waiting
    checkpoint.finished(remaining=0)


def test_a_failed_delivery_commits_nothing_and_finished_refuses_what_is_left() -> None:
    checkpoint = Checkpoint()
    sequence = checkpoint.produced()
    checkpoint.close({("t", 0): 1})
    with pytest.raises(RuntimeError, match="offsets not committed"):
        checkpoint.finished(remaining=1)
    checkpoint.acknowledged(sequence, "changelog: broker down")
    with pytest.raises(RuntimeError, match="broker down"):
        checkpoint.committable()


def test_a_close_without_offsets_queues_nothing() -> None:
    checkpoint = Checkpoint()
    checkpoint.produced()
    checkpoint.close({})
    assert not checkpoint.waiting
