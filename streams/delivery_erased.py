"""The erased customers a delivery worker must not send to: the subjects on ``privacy-requests``.

A delivery worker keeps no per-customer state, so it has no changelog with suppression markers
(streams/erasure.py). It reads the suppression list where every processor's comes from: the
``privacy-requests`` topic (retention unlimited), every partition from the beginning, keeping the
subject (an HMAC, never the id) of each ``erase`` and ``suppress`` request. Before each batch it
reads what was added since (up to the end offsets of that moment), so a message parked on the retry
topic before its customer was erased is not sent when it comes due.
"""

from __future__ import annotations

import logging

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from pydantic import ValidationError

from plumbing.produce import CLIENT_LOGGER
from schemas.privacy import PrivacyRequest
from schemas.registry import PRIVACY_REQUESTS
from streams.pseudonym import Pseudonymizer

log = logging.getLogger(__name__)


class ErasedCustomers:
    """The subjects of the erase and suppress requests on ``privacy-requests``, read to the end on :meth:`refresh`."""

    def __init__(self, kafka_config: dict[str, str], pseudonymizer: Pseudonymizer, timeout: float = 10.0) -> None:
        self.pseudonymizer = pseudonymizer
        self.subjects: set[str] = set()
        self._timeout = timeout
        self._consumer = Consumer({**kafka_config, "group.id": "journey-delivery-erased", "enable.auto.commit": False,
                                   "enable.partition.eof": True, "logger": CLIENT_LOGGER})
        self._next: dict[int, int] = {}  # partition -> next offset to read

    def refresh(self) -> None:
        """Read every request produced up to now (new partitions from their start)."""
        # All topics, not this one by name: asking for one by name may create it where auto-creation is on.
        topic = self._consumer.list_topics(timeout=self._timeout).topics.get(PRIVACY_REQUESTS)
        if topic is None or topic.error is not None:
            return  # not created yet: no request was ever made
        ends: dict[int, int] = {}
        for partition in topic.partitions:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(PRIVACY_REQUESTS, partition),
                                                             timeout=self._timeout)
            self._next[partition] = max(self._next.get(partition, low), low)
            if high > self._next[partition]:
                ends[partition] = high
        if not ends:
            return
        self._consumer.assign([TopicPartition(PRIVACY_REQUESTS, p, self._next[p] or OFFSET_BEGINNING) for p in ends])
        try:
            self._read(ends)
        finally:
            # No fetch left waiting at the broker: the next refresh's offset requests would queue behind
            # its long poll (measured: 0.5 s per partition on the embedded broker, instead of 0.5 ms).
            self._consumer.unassign()

    def _read(self, ends: dict[int, int]) -> None:
        """Consume until every partition in ``ends`` reached its end offset (or reported its end)."""
        while ends:
            # poll, not consume: a batch consume waits out its timeout unless it fills (requests are few).
            msg = self._consumer.poll(self._timeout)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:  # the end, past any offset gap
                    ends.pop(msg.partition(), None)
                else:
                    log.warning("reading privacy-requests: %s", msg.error().str())
                continue
            self._take(msg.value())
            self._next[msg.partition()] = msg.offset() + 1
            if self._next[msg.partition()] >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)

    def _take(self, value: bytes | None) -> None:
        try:
            request = PrivacyRequest.model_validate_json(value or b"")
        except ValidationError:
            return  # not a request: the processors skip it too
        if request.kind in ("erase", "suppress"):
            self.subjects.add(request.subject)

    def erased(self, customer_id: str) -> bool:
        """Whether ``customer_id`` was erased (its HMAC is on the list)."""
        return bool(self.subjects) and self.pseudonymizer.subject(customer_id) in self.subjects

    def close(self) -> None:
        self._consumer.close()
