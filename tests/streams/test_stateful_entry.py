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
