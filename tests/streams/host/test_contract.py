"""The processor contract: the four processors conform (and declare their hooks), defaults are filled once,
and a processor that breaks it is refused at start with the hook named."""

from __future__ import annotations

from typing import Any

import pytest

from streams.host.contract import ContractError, Hosted, Processor, plain, problems
from tests.streams.host import workloads


class Minimal:
    def new_state(self, key: str) -> list[str]:
        return [key]

    def process(self, state: list[str], topic: str, value: bytes | None, key: bytes | None) -> list[Any]:
        return []

    def emit(self, key: str, state: list[str]) -> list[Any]:
        return [("out", key.encode(), b"1")]


@pytest.mark.parametrize("factory", [workloads.features, workloads.scoring, workloads.triggers, workloads.messages])
def test_the_four_processors_conform_and_declare_their_hooks(factory: Any) -> None:
    processor = factory()
    assert isinstance(processor, Processor)
    assert problems(processor) == []
    hosted = Hosted(processor)
    assert hosted.timed and hosted.named and hosted.name == processor.name
    assert set(processor.host_hooks) >= {"due", "next_timer", "last_event_ms"}


def test_defaults_of_a_processor_with_only_the_required_methods() -> None:
    hosted = Hosted(Minimal())
    assert (hosted.timed, hosted.named, hosted.name, hosted.wants_erasures) == (False, False, "Minimal", False)
    assert hosted.due(["c"], 5) == [] and hosted.next_timer(["c"]) is None
    assert hosted.live_clock(1234) == 1234
    assert hosted.erase("c", ["c"]) == []
    assert hosted.export(["c"]) == ["c"]
    assert hosted.clock_topics(["a", "b"]) == frozenset({"a", "b"})
    assert hosted.last_event_ms is None and hosted.invalid == 0
    hosted.give_erasures(lambda _id: "x")
    assert not hasattr(hosted.processor, "erased_subject")


def test_plain_exports_dataclasses_sets_and_slots() -> None:
    from dataclasses import dataclass, field

    @dataclass
    class S:
        ids: set[str] = field(default_factory=lambda: {"a"})
        pairs: tuple[int, ...] = (1, 2)

    assert plain(S()) == {"ids": ["a"], "pairs": [1, 2]}


class OnlyDue(Minimal):
    last_event_ms = None

    def due(self, state: Any, now_ms: int) -> list[Any]:
        return []


class WrongErase(Minimal):
    def erase(self, key: str) -> list[Any]:
        return []


class Undeclared(Minimal):
    host_hooks = ("due", "next_timer", "last_event_ms")
    last_event_ms = None

    def due(self, state: Any, now_ms: int) -> list[Any]:
        return []

    def next_timer(self, state: Any) -> int | None:
        return None

    def live_clock(self, wall_ms: int) -> int:
        return wall_ms


class TimedWithoutEventTime(Minimal):
    def due(self, state: Any, now_ms: int) -> list[Any]:
        return []

    def next_timer(self, state: Any) -> int | None:
        return None


@pytest.mark.parametrize(("processor", "named"), [
    (OnlyDue(), "due/next_timer"), (WrongErase(), "erase: takes 1 arguments, the contract passes 2"),
    (Undeclared(), "defines ['live_clock'] without declaring them"), (TimedWithoutEventTime(), "last_event_ms"),
])
def test_a_processor_that_breaks_the_contract_is_refused_naming_the_hook(processor: Any, named: str) -> None:
    with pytest.raises(ContractError, match=named.replace("[", r"\[").replace("]", r"\]")):
        Hosted(processor)


def test_the_features_processor_reading_resolved_topics_conforms() -> None:
    """With identity resolution `journey features` names its event-time topics; an undeclared ``clock_topics``
    set on the instance made every features worker refuse to start (`make run` failed at once)."""
    from processors.features.build import build_features

    resolved = frozenset({"identified-clickstream", "identified-orders"})
    hosted = Hosted(build_features(clock_topics=resolved))
    assert hosted.clock_topics(["identified-clickstream", "identified-orders", "identity-merges"]) == resolved
    assert Hosted(build_features()).clock_topics(["clickstream"]) == frozenset({"clickstream"})
