"""One event-time check (late, duplicate or applied) for the features and the triggers processors."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

from processors.event_time import MIN_PRUNE_AT, Outcome, admit
from processors.triggers.config import RulesConfig
from processors.triggers.processor import TriggersProcessor
from processors.triggers.state import TriggerState
from tests.processors.triggers.helpers import HOUR, MINUTE, at, event

LATENESS = 60 * MINUTE


@dataclass
class State:
    newest: dict[str, int] = field(default_factory=dict)
    recent_ids: dict[str, tuple[int, str]] = field(default_factory=dict)
    prune_ids_at: int = MIN_PRUNE_AT


def test_late_then_duplicate_then_applied() -> None:
    state = State()
    assert admit(state, "orders", 10 * HOUR, "a", LATENESS) is Outcome.APPLIED
    assert admit(state, "orders", 9 * HOUR - 1, "b", LATENESS) is Outcome.LATE  # older than newest - lateness
    assert admit(state, "orders", 9 * HOUR, "b", LATENESS) is Outcome.APPLIED  # on the bound: in time
    assert admit(state, "chat", 0, "c", LATENESS) is Outcome.APPLIED  # lateness is per topic
    assert admit(state, "orders", 10 * HOUR, "a", LATENESS) is Outcome.DUPLICATE
    assert state.newest == {"orders": 10 * HOUR, "chat": 0}
    assert state.recent_ids == {"a": (10 * HOUR, "orders"), "b": (9 * HOUR, "orders"), "c": (0, "chat")}


def test_a_remembered_event_is_a_duplicate_even_past_the_lateness_bound() -> None:
    """A restarted stage re-sends what it had not committed, by then older than the bound: a duplicate, not late."""
    state = State()
    assert admit(state, "orders", 10 * HOUR, "a", LATENESS) is Outcome.APPLIED
    assert admit(state, "orders", 12 * HOUR, "b", LATENESS) is Outcome.APPLIED
    assert admit(state, "orders", 10 * HOUR, "a", LATENESS) is Outcome.DUPLICATE  # 2 h behind, still remembered
    assert admit(state, "orders", 10 * HOUR, "z", LATENESS) is Outcome.LATE  # as old, never seen: late
    assert state.newest == {"orders": 12 * HOUR} and set(state.recent_ids) == {"a", "b"}


def test_ids_are_forgotten_only_past_their_own_topics_bound() -> None:
    state = State()
    admit(state, "chat", 0, "old-chat", LATENESS)
    for i in range(MIN_PRUNE_AT):  # 257 ids with the last one, which prunes (the newest time moves on with each)
        admit(state, "clickstream", 5 * HOUR + i * MINUTE, f"v{i}", LATENESS)
    newest = state.newest["clickstream"]
    kept = {i for i, (t, topic) in state.recent_ids.items() if topic == "clickstream"}
    assert kept == {f"v{i}" for i in range(MIN_PRUNE_AT) if 5 * HOUR + i * MINUTE >= newest - LATENESS}
    assert len(kept) == 61  # the last hour of views, one a minute, both ends included
    assert "old-chat" in state.recent_ids  # within its own topic's bound, however far the clickstream went
    assert state.prune_ids_at == max(MIN_PRUNE_AT, 2 * len(state.recent_ids))
    assert admit(state, "chat", 0, "old-chat", LATENESS) is Outcome.DUPLICATE


def test_triggers_ignore_a_duplicate_after_many_events_of_a_newer_topic() -> None:
    """A customer's chat message comes again after 300 page views two hours later: still a duplicate (before,
    ids were forgotten by the newest time of any topic, so the message counted twice)."""
    processor = TriggersProcessor(RulesConfig())
    state = processor.new_state("c1")
    message = event("chat_message", at(0), event_id="m1", text="this is awful, I am very angry")
    views = [event("product_view", at(120 + i / 10), event_id=f"v{i}") for i in range(300)]
    for topic, key, value, _ in [message, *views, message]:
        processor.process(state, topic, value, key)
    assert [event_id for _, event_id, _, _ in state.history.sentiments] == ["m1"]
    assert processor.late == 0


def test_a_trigger_state_pickled_with_times_only_keeps_its_ids() -> None:
    """A state from a changelog written when ``recent_ids`` held times only: restored with the topic of the newest
    event, which forgets each id by the same bound as before."""
    legacy = TriggerState("c1", newest={"chat": 5, "orders": 9}, recent_ids={"a": 5, "b": 9})
    values = legacy.__getstate__()
    values[2] = {"a": 5, "b": 9}
    restored = TriggerState.__new__(TriggerState)
    restored.__setstate__(values[:-1])  # and before prune_ids_at existed
    assert restored.recent_ids == {"a": (5, "orders"), "b": (9, "orders")}
    assert restored.prune_ids_at == MIN_PRUNE_AT
    assert pickle.loads(pickle.dumps(restored)).recent_ids == restored.recent_ids
