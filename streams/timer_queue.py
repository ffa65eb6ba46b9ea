"""A timer heap over many customers, for hosts: which keys have a timer before the clock.

The host records each key's ``next_timer(state)`` after processing it, and asks for the
keys due when its clock advances (the event-time watermark in a replay, the live clock
when live). Stale heap entries (a key re-armed or cancelled since) are skipped lazily.
"""

from __future__ import annotations

import heapq


class TimerQueue:
    """Keys by their earliest deadline (ms); ``pop_due(now)`` gives those with a deadline before ``now``."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._deadline: dict[str, int] = {}

    def set(self, key: str, deadline_ms: int | None) -> None:
        """Record ``key``'s earliest deadline (None: no timer pending)."""
        if deadline_ms is None:
            self._deadline.pop(key, None)
            return
        if self._deadline.get(key) != deadline_ms:
            self._deadline[key] = deadline_ms
            heapq.heappush(self._heap, (deadline_ms, key))

    def pop_due(self, now_ms: int) -> list[str]:
        """Keys whose deadline is before ``now_ms``, earliest first; they leave the queue until ``set`` again."""
        due = []
        heap = self._heap
        while heap and heap[0][0] < now_ms:
            deadline, key = heapq.heappop(heap)
            if self._deadline.get(key) == deadline:
                del self._deadline[key]
                due.append(key)
        return due

    def next_deadline(self) -> int | None:
        while self._heap and self._deadline.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._deadline)
