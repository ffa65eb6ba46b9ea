"""Publishing the sink's own dead letters to the ``dead-letters`` topic: retried, never fatal.

A letter is in ClickHouse before it is published (the sink's commit protocol), and it is bounded
in size (``schemas.validation.MAX_ORIGINAL_BYTES``), so the broker has no reason to refuse it. If
it does anyway, the refusal is logged with the letter's id and counted, never raised: producing a
dead letter must not stop the stream it protects (a refused 1 MB letter used to end the sink).
A letter that failed for a passing reason (broker away, timeout) is produced again after a pause,
until it is acknowledged or the sink stops.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from plumbing.produce import TrackingProducer
from schemas.outputs import DeadLetter
from schemas.registry import DEAD_LETTERS

log = logging.getLogger(__name__)

#: Failures worth producing the letter again: the broker is away or slow, not refusing it.
PASSING = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
                     KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_LEADER_FOR_PARTITION,
                     KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NETWORK_EXCEPTION})


class LetterPublisher:
    """Produces dead letters with a header, until each is acknowledged, refused for good, or the sink stops."""

    def __init__(self, producer: TrackingProducer, headers: list[tuple[str, bytes]],
                 stopping: Callable[[], bool], pause: float = 0.5) -> None:
        self._producer = producer
        self._headers = headers
        self._stopping = stopping
        self._pause = pause
        #: ``published``, ``retried``, ``refused`` (for good), ``abandoned`` (still failing when the sink stopped).
        self.outcomes: Counter[str] = Counter()

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        pending = list(letters)
        pause = self._pause
        while pending:
            failed: list[tuple[DeadLetter, KafkaError]] = []
            for letter in pending:
                try:
                    self._producer.send(DEAD_LETTERS, letter, key=letter.dead_letter_id, headers=self._headers,
                                        on_delivery=self._outcome(letter, failed))
                except KafkaException as exc:  # refused before queueing (e.g. over message.max.bytes)
                    failed.append((letter, exc.args[0]))
            while self._producer.wait(1.0):
                if self._stopping():
                    break
            again = [letter for letter, err in failed if err.code() in PASSING or err.retriable()]
            retried = {letter.dead_letter_id for letter in again}
            for letter, err in failed:
                if letter.dead_letter_id not in retried:
                    self.outcomes["refused"] += 1
                    log.error("dead letter %s (%s) refused by the broker, kept in ClickHouse only: %s",
                              letter.dead_letter_id, letter.reason, err.str())
            if again and self._stopping():
                self.outcomes["abandoned"] += len(again)
                log.error("%d dead letters not published (the sink stops; they are in ClickHouse)", len(again))
                return
            if again:
                self.outcomes["retried"] += len(again)
                log.warning("%d dead letters not published yet (%s), again in %.1fs", len(again),
                            failed[0][1].str(), pause)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
            pending = again

    def _outcome(self, letter: DeadLetter, failed: list[tuple[DeadLetter, KafkaError]]) -> Callable[..., None]:
        def report(err: KafkaError | None, _: Any) -> None:
            if err is None:
                self.outcomes["published"] += 1
            else:
                failed.append((letter, err))
        return report
