"""A restored Entry shares its topic names with every other key's (each changelog record unpickles on its own)."""

from __future__ import annotations

import pickle

from streams.stateful import Entry


def test_restored_entries_share_topic_names_and_keep_their_offsets() -> None:
    topic = "".join(["click", "stream"])  # a fresh string, as msg.topic() returns one
    a, b = (pickle.loads(pickle.dumps(Entry({"n": i}, {topic: 10 + i, "orders": i}), pickle.HIGHEST_PROTOCOL))
            for i in range(2))
    assert (a.state, a.applied, b.applied) == ({"n": 0}, {"clickstream": 10, "orders": 0},
                                               {"clickstream": 11, "orders": 1})
    keys_a, keys_b = ({k: k for k in e.applied} for e in (a, b))
    assert keys_a["clickstream"] is keys_b["clickstream"] and keys_a["orders"] is keys_b["orders"]


class _Counter:
    def new_state(self, key: str) -> dict[str, int]:
        return {"n": 0}

    def process(self, state: dict[str, int], topic: str, value: bytes | None, key: bytes | None) -> list[object]:
        state["n"] += 1
        return []

    def emit(self, key: str, state: dict[str, int]) -> list[object]:
        return []


def test_a_record_of_a_partition_revoked_mid_batch_moves_no_offset_to_commit() -> None:
    from confluent_kafka import Message

    from streams.stateful import StatefulWorker

    worker = StatefulWorker({"bootstrap.servers": "127.0.0.1:1"}, "g", ["orders"], "g-changelog", _Counter())
    worker.stores, worker._dirty = {0: {}}, {0: set()}  # partition 0 assigned; partition 1 revoked mid-batch
    worker.handle([Message(topic="orders", partition=0, offset=4, key=b"a", value=b"x"),
                   Message(topic="orders", partition=1, offset=9, key=b"b", value=b"y")])
    assert worker._positions == {("orders", 0): 5}, "the revoked partition's offset is its next owner's to commit"
    assert worker.stores[0]["a"].state == {"n": 1} and worker.stats.consumed == 2
