"""Topics read side by side: the triggers do not depend on how a host interleaves them.

A Kafka host reads clickstream, orders, chat and consent as separate partitions, so a customer's
order may arrive before or after the clickstream around it. Whatever the interleaving (within
the host's grace, so no timer fires before the events up to its deadline are in), the triggers
are those of the time-ordered replay.
"""

from __future__ import annotations

import orjson
import pytest

from processors.triggers.processor import TriggersProcessor
from streams.replay_host import Replay
from streams.sources.generator import generate


def triggers(records: list[tuple[str, bytes, bytes, int]], grace_ms: int) -> set[str]:
    replay = Replay(TriggersProcessor(), grace_ms=grace_ms)
    replay.feed(records)
    replay.advance(max(r[3] for r in records))
    return {orjson.loads(v)["trigger_id"] for _, _, v in replay.outputs}


@pytest.mark.parametrize("bucket", [30 * 60_000, 86_400_000])
@pytest.mark.parametrize("first", ["clickstream", "orders", "chat", "consent"])
def test_each_topic_read_ahead_within_the_grace_gives_the_time_ordered_triggers(first: str, bucket: int) -> None:
    records = [(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000))
               for r in generate(customers=150, days=20, seed=5)]
    expected = triggers(records, 0)
    assert len(expected) > 100
    skewed = sorted(records, key=lambda r: (r[3] // bucket, r[0] != first, r[3]))
    assert triggers(skewed, bucket) == expected
