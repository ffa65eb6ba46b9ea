"""Twitter support replay: valid chat records, threads resolved to conversations and customers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from streams.sources.stats import ReplayStats
from streams.sources.twcs import twcs, tweet_event_id
from tests.streams.sources.helpers import Replay, check_records


@pytest.fixture(scope="module")
def by_tweet(twcs_replay: Replay, data_dir: Path) -> dict[str, dict[str, Any]]:
    """Record bodies by tweet id (event ids derive from tweet ids)."""
    bodies = {b["event_id"]: b for b in (orjson.loads(r.value) for r in twcs_replay[0])}
    frame = pd.read_csv(data_dir / "twcs_head5000.csv", dtype=str)
    return {t: bodies[tweet_event_id(t)] for t in frame["tweet_id"] if tweet_event_id(t) in bodies}


def test_every_record_is_valid_and_every_row_accounted_for(twcs_replay: Replay, data_dir: Path) -> None:
    records, stats = twcs_replay
    assert check_records(records) == {"chat_message": len(records)}
    frame = pd.read_csv(data_dir / "twcs_head5000.csv", dtype=str, keep_default_na=False)
    assert stats.rows == len(frame) == 5001
    assert stats.records + sum(stats.skipped.values()) == stats.rows
    # tweet 3398 appears twice, the second time as a broken row (part of a text spilled into the index column)
    assert stats.skipped["malformed_row"] == 1 and set(stats.skipped) == {"malformed_row",
                                                                          "agent_message_without_customer"}
    roles = Counter(orjson.loads(r.value)["sender_role"] for r in records)
    assert roles["customer"] == int((frame["inbound"] == "True").sum()), "every customer tweet is a record"


def test_agents_without_a_customer_in_the_file_are_counted(twcs_replay: Replay, data_dir: Path) -> None:
    """Independent count: agent tweets with no inbound tweet up their reply chain (first row per id wins)."""
    frame = pd.read_csv(data_dir / "twcs_head5000.csv", dtype=str, keep_default_na=False)
    rows = frame[frame["author_id"] != ""].drop_duplicates("tweet_id").set_index("tweet_id")
    parent = rows["in_response_to_tweet_id"].str.replace(r"\.0$", "", regex=True).to_dict()
    inbound = (rows["inbound"] == "True").to_dict()

    def has_customer(tweet: str) -> bool:
        seen = set()
        while tweet in inbound and tweet not in seen:
            if inbound[tweet]:
                return True
            seen.add(tweet)
            tweet = parent[tweet]
        return False

    orphans = sum(1 for t in rows.index if not has_customer(t))
    assert twcs_replay[1].skipped["agent_message_without_customer"] == orphans > 0
    assert "81" in rows.index and not has_customer("81"), "ChipotleTweets' tweet 81 answers no tweet in the file"


def test_a_thread_resolves_to_its_root_and_customer(by_tweet: dict[str, dict[str, Any]]) -> None:
    # 1 (sprintcare) answers 3 (115712), which answers 4 (sprintcare) <- 5 (115712) <- 6 (sprintcare) <- 8 (115712)
    thread = [by_tweet[t] for t in ("1", "2", "3", "4", "5", "6", "8")]
    assert {m["conversation_id"] for m in thread} == {"8"}, "the root is the first tweet of the thread"
    assert {m["customer_id"] for m in thread} == {"115712"}
    assert [m["sender_role"] for m in thread] == ["agent", "customer", "customer", "agent", "customer", "agent",
                                                  "customer"]
    assert by_tweet["2"]["in_reply_to"] == by_tweet["1"]["event_id"]
    assert by_tweet["1"]["in_reply_to"] == by_tweet["3"]["event_id"]
    assert "in_reply_to" not in by_tweet["8"]
    assert by_tweet["1"]["event_time"] == "2017-10-31T22:10:47Z" and by_tweet["1"]["channel"] == "social"
    assert "language" not in by_tweet["1"]


def test_an_agent_belongs_to_the_nearest_customer_above_it(by_tweet: dict[str, dict[str, Any]]) -> None:
    # 387 (Morrisons) answers 386 (Morrisons), which answers 384 (customer 115804)
    assert (by_tweet["387"]["sender_role"], by_tweet["387"]["customer_id"]) == ("agent", "115804")
    assert by_tweet["387"]["conversation_id"] == by_tweet["384"]["conversation_id"]


def test_replies_only_point_at_records(twcs_replay: Replay) -> None:
    ids = {orjson.loads(r.value)["event_id"] for r in twcs_replay[0]}
    replies = [orjson.loads(r.value).get("in_reply_to") for r in twcs_replay[0]]
    assert all(reply in ids for reply in replies if reply is not None)
    assert sum(reply is not None for reply in replies) > 3000


def test_cycles_duplicates_and_orphans(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    when = "Tue Oct 31 22:10:47 +0000 2017"
    path.write_text(",tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
                    f"0,10,shop,False,{when},we answer 11,,11.0\n"
                    f"1,11,alice,True,{when},and I answer 10,,10.0\n"
                    f"2,11,mallory,True,{when},a second tweet 11,,\n"
                    f"3,12,shop,False,{when},nobody asked,,99.0\n"
                    f"4,13,bob,True,not a time,hello,,\n")
    records = twcs(path, stats := ReplayStats())
    bodies = {b["text"]: b for b in (orjson.loads(r.value) for r in records)}
    assert set(bodies) == {"we answer 11", "and I answer 10"}
    assert {b["customer_id"] for b in bodies.values()} == {"alice"}
    assert stats.skipped == {"duplicate_tweet_id": 1, "agent_message_without_customer": 1, "bad_timestamp": 1}
    assert stats.rows == 5
