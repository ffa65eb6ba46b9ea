"""Erasure against the delivery retry topic, on the real broker and a loopback receiver.

Messages are parked on the retry topic while the receiver is down; then one customer is erased
(``privacy-requests``, as ``journey privacy erase`` sends it); the receiver comes back. The worker
that reads the parked messages must not send the erased customer's, nor a new one of theirs on
``messages``: each is counted ``suppressed``, every other message is delivered once.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from streams.delivery import WebhookSender
from streams.delivery_erased import ErasedCustomers
from streams.delivery_retry import retry_topic
from streams.privacy import send_request
from streams.pseudonym import Pseudonymizer
from tests.conftest import Backend
from tests.integration.delivering import deliver_until, made_messages, produce_to_partition
from tests.integration.test_privacy import read_topic
from tests.loopback import Receiver

pytestmark = pytest.mark.integration

N = 6
FAST = {"retries": 1, "backoff": 0.01, "park_backoff": 0.05, "park_backoff_max": 0.2, "retry_window": 600}
PSEUDO = Pseudonymizer(b"delivery-erasure-test-key-32-bytes!!")


def _customer(value: bytes) -> str:
    return str(orjson.loads(value)["customer_id"])


def test_a_parked_message_of_an_erased_customer_is_not_sent(backend: Backend,
                                                            receiver: tuple[str, type[Receiver]]) -> None:
    messages = made_messages(N)
    produce_to_partition(backend.kafka, messages)
    url, handler = receiver
    handler.fail = 10**6  # down: every message ends parked
    group = "deliver-erasure"
    sender = WebhookSender(url, None, timeout=5.0)
    parked = deliver_until(backend.kafka, sender, group, lambda w: w.stats.outcomes["retrying"] >= N, **FAST)
    assert parked.stats.outcomes["delivered"] == 0
    on_retry = read_topic(backend.kafka, retry_topic(group), backend.partitions)
    assert len(on_retry) >= N

    gone = _customer(messages[0][2])
    kept = [v for _, _, v in messages if _customer(v) != gone]
    erased_count = N - len(kept)
    send_request(backend.kafka, backend.partitions, gone, PSEUDO.subject(gone), "erase")
    # A new message of the erased customer on ``messages`` (made before the erasure reached the processors).
    late = orjson.dumps({**orjson.loads(messages[0][2]), "message_id": "msg-after-erasure"})
    produce_to_partition(backend.kafka, [("messages", gone.encode(), late)])

    handler.fail, handler.statuses, handler.received = 0, [], []
    erased = ErasedCustomers(backend.kafka, PSEUDO)
    worker = deliver_until(backend.kafka, sender, group,
                           lambda w: w.stats.outcomes["delivered"] == len(kept)
                           and w.stats.suppressed == erased_count + 1, erased=erased, **FAST)
    assert erased.subjects == {PSEUDO.subject(gone)}
    posted = [body for _, body in handler.received]
    assert sorted(posted) == sorted(kept), "every other message once, none of the erased customer's"
    assert not [b for b in posted if _customer(b) == gone]
    assert worker.stats.outcomes == Counter({"delivered": len(kept), "suppressed": erased_count + 1})
    assert worker.stats.dead_letters == {}


def test_the_erased_list_follows_privacy_requests_as_they_come(backend: Backend) -> None:
    """Each refresh reads what was added since: erase (one partition), suppress (every partition), not a request."""
    erased = ErasedCustomers(backend.kafka, PSEUDO)
    try:
        erased.refresh()
        assert erased.subjects == set() and not erased.erased("ana")
        send_request(backend.kafka, backend.partitions, "ana", PSEUDO.subject("ana"), "erase")
        erased.refresh()
        assert erased.subjects == {PSEUDO.subject("ana")} and erased.erased("ana") and not erased.erased("bo")
        send_request(backend.kafka, backend.partitions, "", PSEUDO.subject("bo"), "suppress")
        produce_to_partition(backend.kafka, [("privacy-requests", b"x", b"not a request")], partition=1)
        erased.refresh()
        assert erased.subjects == {PSEUDO.subject("ana"), PSEUDO.subject("bo")} and erased.erased("bo")
        erased.refresh()  # nothing new: the same list
        assert len(erased.subjects) == 2
    finally:
        erased.close()
