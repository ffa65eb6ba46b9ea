"""One customer's trigger state: plain containers, so it pickles into a changelog."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from processors.event_time import MIN_PRUNE_AT
from processors.triggers.history import HistoryState
from processors.triggers.timers import Timer


@dataclass(slots=True)
class TriggerState:
    customer_id: str
    newest: dict[str, int] = field(default_factory=dict)  # input topic -> newest event time (ms)
    recent_ids: dict[str, tuple[int, str]] = field(default_factory=dict)  # event id -> (time, topic): duplicates
    clock_ms: int = 0  # newest event time of any input topic
    timers: list[Timer] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=dict)  # rule name -> that rule's own state
    history: HistoryState = field(default_factory=HistoryState)
    profile: dict[str, Any] = field(default_factory=dict)  # the profile fields rules and summaries read
    profile_as_of_ms: int = -1
    scores: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # model -> (scored_at ms, id, band)
    fired: int = 0
    late: int = 0
    #: (as_of ms, orders_total) of the latest profiles, sorted: what the profile counted at an earlier moment,
    #: even once a newer profile has arrived (the topics are read side by side).
    profile_orders_seen: list[tuple[int, int]] = field(default_factory=list)
    prune_ids_at: int = MIN_PRUNE_AT  # size of recent_ids that triggers the next pruning (processors.event_time)

    def __getstate__(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]

    def __setstate__(self, state: list[Any]) -> None:
        """Restore a pickled state; one pickled before a field existed gets that field's default."""
        for index, f in enumerate(fields(self)):
            if index < len(state):
                object.__setattr__(self, f.name, state[index])
            else:
                object.__setattr__(self, f.name, f.default_factory() if f.default_factory is not MISSING  # type: ignore[misc]
                                   else f.default)
        if self.recent_ids and isinstance(next(iter(self.recent_ids.values())), int):
            # Pickled when ids were kept with their time only, and forgotten once older than the newest event of
            # any topic minus the lateness: on that topic, the same bound holds.
            clock_topic = max(self.newest, key=self.newest.__getitem__)
            self.recent_ids = {i: (t, clock_topic) for i, t in self.recent_ids.items()}  # type: ignore[misc]

    def has_ordered(self, at_ms: int | None = None) -> bool:
        """An order was seen here, or the profile (which may know older history) counts one.

        With ``at_ms``, only a profile as of before ``at_ms`` counts: a newer one may count
        orders made after the moment judged, and whether it has arrived yet depends on the
        host's interleaving of topics, not on the events.
        """
        return self.history.orders_placed > 0 or self.profile_orders(at_ms) > 0

    def profile_orders(self, at_ms: int | None = None) -> int:
        """Orders the newest profile as of before ``at_ms`` counts (0 when none is that old)."""
        if at_ms is None or self.profile_as_of_ms < at_ms:
            return int(self.profile.get("orders_total") or 0)
        before = [n for as_of, n in self.profile_orders_seen if as_of < at_ms]
        return before[-1] if before else 0
