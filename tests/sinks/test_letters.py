"""Publishing dead letters never raises: a letter the broker refuses is logged and counted (issue 17, item 4)."""

from __future__ import annotations

import uuid

import pytest

from plumbing.produce import TrackingProducer
from schemas.registry import DEAD_LETTERS
from schemas.validation import dead_letter
from sinks.letters import LetterPublisher
from streams.broker import EmbeddedBroker
from streams.progress import end_offsets_by_eof
from streams.topics import ensure_topics, topic_specs

pytestmark = pytest.mark.integration


def test_a_letter_the_producer_refuses_is_counted_and_the_others_are_published() -> None:
    with EmbeddedBroker() as broker:
        kafka = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(kafka, topic_specs(2))
        small = [dead_letter("clickstream", 0, i, b"c1", f"bad-{i}-{uuid.uuid4()}".encode(), "malformed_json", "x")
                 for i in range(3)]
        large = dead_letter("clickstream", 0, 9, b"c1", b"y" * 20_000, "oversized", "too large")
        producer = TrackingProducer(kafka, **{"message.max.bytes": 10_000})  # the large letter is over it
        publisher = LetterPublisher(producer, [("journey-stored", b"dead_letters")], stopping=lambda: False)
        publisher.publish([small[0], large, *small[1:]])
        assert publisher.outcomes == {"published": 3, "refused": 1}
        assert sum(end_offsets_by_eof(kafka, [DEAD_LETTERS]).values()) == 3
