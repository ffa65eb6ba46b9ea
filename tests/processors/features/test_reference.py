"""The features processor fed the Taobao sample and the Olist orders in process equals the pandas reference,
every value of every profile: as of each customer's newest event (a host without timers), and with every stage
timer fired up to the final watermark (what the Kafka host's clock reaches once every input is at its end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from processors.features.build import build_features
from processors.sentiment import sentiment
from streams.replay_host import Replay
from streams.sources import open_source
from streams.sources.record import SourceRecord, sort_by_event_time
from tests.processors.features.compare import COMPARED, differences, flat
from tests.processors.features.reference import olist_features, taobao_features


@pytest.fixture(scope="module")
def records(datasets: Path) -> list[SourceRecord]:
    taobao, _ = open_source(f"taobao:{datasets / 'taobao_userbehavior_sample.csv'}")
    olist, _ = open_source(f"olist:{datasets / 'olist'}")
    return sort_by_event_time([*taobao, *olist])


def watermark(records: list[SourceRecord]) -> int:
    return max(round(r.event_time.timestamp() * 1000) for r in records if r.event_time is not None)


def replayed(records: list[SourceRecord], timers: bool) -> dict[str, dict[str, Any]]:
    """Every customer's final profile, the records applied in event-time order (timers fired on the way)."""
    processor = build_features()
    if timers:
        replay = Replay(processor)
        replay.feed([(r.topic, r.key, r.value, round(r.event_time.timestamp() * 1000)) for r in records
                     if r.event_time is not None])
        replay.advance(watermark(records))
        states = replay.states
    else:
        states = {}
        for r in records:
            key = r.key.decode()
            state = states.get(key) or states.setdefault(key, processor.new_state(key))
            processor.process(state, r.topic, r.value, r.key)
    return {key: flat(processor.profile(state)) for key, state in states.items()}


@pytest.mark.parametrize("timers", [False, True], ids=["as-of-newest-event", "timers-to-the-final-watermark"])
def test_every_profile_value_equals_the_batch_computation(records: list[SourceRecord], datasets: Path,
                                                          timers: bool) -> None:
    streamed = replayed(records, timers)
    end = watermark(records) if timers else None
    taobao = taobao_features(datasets / "taobao_userbehavior_sample.csv", watermark_ms=end)
    olist = olist_features(datasets / "olist", watermark_ms=end, sentiment=sentiment)
    assert sorted(streamed) == sorted([*taobao.index, *olist.index])
    for name, expected in (("Taobao", taobao), ("Olist", olist)):
        mismatches = differences({c: streamed[c] for c in expected.index}, expected)
        assert not mismatches, f"{name}: {len(mismatches)} differences, first: {mismatches[:5]}"
    # what the comparison covers: every value a profile has, and stages the timers alone reach
    assert set(next(iter(streamed.values()))) == set(COMPARED)
    stages = olist["stage"].value_counts()
    if timers:
        assert stages["lapsed"] > 1000 and stages["at_risk"] > 100, stages
        assert (olist["as_of_ms"] > olist["last_seen_ms"]).sum() > 5000
        assert {"lapsed", "browser"} <= set(taobao["stage"])
    else:
        assert (olist["as_of_ms"] == olist["last_seen_ms"]).all()
        assert {"carter", "first_time_buyer", "repeat_buyer", "browser"} <= set(taobao["stage"])
        assert taobao["segments"].map(len).sum() > 100 and olist["segments"].map(len).sum() > 10
    assert olist["negative_streak"].max() >= 1 and olist["last_sentiment"].notna().sum() > 3000
