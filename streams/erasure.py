"""Erasure inside a stateful worker: the generic hook every processor gets from its host.

A :class:`~streams.stateful.StatefulWorker` given a :class:`~streams.pseudonym.Pseudonymizer`
also consumes ``privacy-requests`` (co-partitioned with the inputs). For an ``erase`` request
on partition p it:

1. drops every key of p whose HMAC is the request's subject from the store, its pending
   timers from the timer queue, and the key from the dirty set;
2. calls the processor's ``erase(key, state) -> outputs`` hook (streams/host/contract.py; default:
   nothing), for what the
   processor keeps outside the per-key state or on its own topics (features tombstones the
   compacted ``customer-features`` record; a scoring processor drops its held labels);
3. at the next flush, writes a tombstone for each dropped key to the changelog, and a marker
   record keyed ``MARKER + subject`` (the erased-ids suppression list: an HMAC, never the id),
   then the ``privacy-audit`` record, and only then commits the request's offset.

So a restart (restore reads the changelog to its end: tombstone = absent) never brings an
erased customer back, and a crash before the commit redoes the erasure. When partitions are
assigned, the requests not yet committed are applied right after the restore, before any
input record of those partitions: a request made while the processor was stopped wins over
the old state, and events that follow it start a fresh state. Processors with an
``erased_subject`` attribute get a function over the list: ``erased_subject(customer_id)`` is
the customer's HMAC if they were erased, else None.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from processors.output import ErasureOutput
from schemas.privacy import PrivacyAudit, PrivacyRequest
from schemas.registry import PRIVACY_AUDIT
from streams.host.contract import Hosted
from streams.pseudonym import Pseudonymizer

log = logging.getLogger(__name__)

#: Changelog key prefix of suppression-list markers (a customer id cannot start with NUL in practice).
MARKER = "\x00erased:"



class Erasures:
    """The suppression list and pending tombstones of one worker, per partition."""

    def __init__(self, pseudonymizer: Pseudonymizer, location: str) -> None:
        self.pseudonymizer = pseudonymizer
        self.location = location
        self.subjects: dict[int, set[str]] = {}
        self.all_subjects: set[str] = set()
        self.tombstones: dict[int, set[str]] = {}
        self.new_markers: dict[int, set[str]] = {}
        self.applied: dict[int, int] = {}  # partition -> last request offset applied
        self.erased_keys = 0

    def restored(self, partition: int, key: str) -> bool:
        """Take a changelog key read at restore: True if it is a suppression marker (not state)."""
        if not key.startswith(MARKER):
            return False
        subject = key.removeprefix(MARKER)
        self.subjects.setdefault(partition, set()).add(subject)
        self.all_subjects.add(subject)
        return True

    def forget(self, partition: int) -> None:
        for held in (self.subjects, self.tombstones, self.new_markers, self.applied):
            held.pop(partition, None)  # type: ignore[attr-defined]
        self.all_subjects = set().union(*self.subjects.values()) if self.subjects else set()

    def erased_subject(self, customer_id: str) -> str | None:
        """The HMAC of ``customer_id`` if it was erased (on the list), else None."""
        if not self.all_subjects:
            return None
        subject = self.pseudonymizer.subject(customer_id)
        return subject if subject in self.all_subjects else None

    def suppressed(self, customer_id: str) -> bool:
        """Whether ``customer_id`` was erased (its HMAC is on the list)."""
        return self.erased_subject(customer_id) is not None

    def apply(self, partition: int, offset: int, value: bytes | None, store: dict[str, Any],
              timers: Any, dirty: set[str], processor: Hosted[Any]) -> list[ErasureOutput]:
        """Carry out one request read at ``offset``; return what to produce (hook outputs, audit)."""
        if offset <= self.applied.get(partition, -1):
            return []
        self.applied[partition] = offset
        try:
            request = PrivacyRequest.model_validate_json(value or b"")
        except ValidationError:
            log.warning("privacy-requests[%d]@%d is not a privacy request: skipped", partition, offset)
            return []
        subject = request.subject
        keys = [key for key in store if self.pseudonymizer.subject(key) == subject]
        outputs: list[ErasureOutput] = []
        timers_cleared = 0
        for key in keys:
            entry = store.pop(key)
            dirty.discard(key)
            self.tombstones.setdefault(partition, set()).add(key)
            if timers is not None and processor.timed:
                timers_cleared += processor.next_timer(entry.state) is not None
                timers.set(key, None)
            outputs.extend(processor.erase(key, entry.state))
        self.erased_keys += len(keys)
        if subject not in self.subjects.setdefault(partition, set()):
            self.subjects[partition].add(subject)
            self.all_subjects.add(subject)
            self.new_markers.setdefault(partition, set()).add(subject)
        if request.kind == "erase":
            audit = PrivacyAudit(request_id=request.request_id, subject=subject, action="erase",
                                 location=self.location, rows=len(keys),
                                 detail=f"state keys dropped and tombstoned: {len(keys)}; customers with pending "
                                        f"timers cleared: {timers_cleared}; on the suppression list",
                                 completed_at=datetime.now(UTC))
            outputs.append((PRIVACY_AUDIT, subject.encode(), audit.__pydantic_serializer__.to_json(audit)))
        return outputs

    def pending_writes(self, partition: int) -> list[tuple[str, bytes | None]]:
        """Changelog (key, value) records to write at the flush: tombstones, then new markers; cleared."""
        writes: list[tuple[str, bytes | None]] = [(key, None) for key in self.tombstones.pop(partition, ())]
        writes += [(MARKER + subject, b"1") for subject in sorted(self.new_markers.pop(partition, ()))]
        return writes
