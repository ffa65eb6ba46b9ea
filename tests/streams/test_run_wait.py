"""`journey run`'s wait for a stage: commits and outputs both count as progress (pure logic: fakes for the broker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.progress import Progress

from plumbing import waiting
from plumbing.waiting import Stalled
from streams.run import Outputs, _wait, rate


class _Committed:
    """A group whose committed offsets stay ``stuck`` records short for ``polls`` polls, then reach the end."""

    group_id = "g"

    def __init__(self, polls: int, stuck: int) -> None:
        self.polls, self.stuck = polls, stuck

    def try_remaining(self, ends: dict[tuple[str, int], int]) -> int:
        self.polls -= 1
        return self.stuck if self.polls > 0 else 0


class _Counter:
    """An output topic that grows by ``step`` records per look."""

    def __init__(self, step: int) -> None:
        self.step, self.n = step, 0

    def count(self, fresh: bool = False) -> int:
        self.n += self.step
        return self.n


@pytest.fixture
def short_stall() -> Iterator[None]:
    before = waiting.stall_seconds()
    waiting.configure(0.6)
    yield
    waiting.configure(before)


def test_a_stage_that_produces_without_committing_is_not_stalled(short_stall: None) -> None:
    """A scorer firing re-scoring timers over a long history produced scores for minutes before its next
    commit; the run took that for a stall and failed ("records not committed")."""
    with Progress(disable=True) as bar:
        _wait(bar, "scoring", _Committed(polls=12, stuck=5), {("t", 0): 5}, 5, lambda: None,  # type: ignore[arg-type]
              Outputs(_Counter(step=1), "scores"))  # type: ignore[arg-type]


def test_a_stage_that_neither_commits_nor_produces_is_stalled(short_stall: None) -> None:
    with Progress(disable=True) as bar, pytest.raises(Stalled, match="5 of 5 records not committed"):
        _wait(bar, "scoring", _Committed(polls=1000, stuck=5), {("t", 0): 5}, 5, lambda: None,  # type: ignore[arg-type]
              Outputs(_Counter(step=0), "scores"))  # type: ignore[arg-type]


def test_the_summary_rate_of_a_few_events_is_not_zero() -> None:
    assert rate(6, 90.6) == "0.066"
    assert rate(148_558, 92.3) == "1,610"
    assert (rate(0, 5.0), rate(95, 10.0), rate(100, 10.0)) == ("0", "9.5", "10")
