"""Browse abandoned: a session with at least ``min_product_views`` product views and no cart.

A session is the customer's clickstream with gaps of at most ``session_gap_minutes``, in
event time; it ends when that much time passes without a clickstream event, and the trigger
fires then (at last event + gap), anchored on the session's latest event (by time, then id).
An add to cart, a checkout or an order at a time in ``[session start, last + gap]`` converts
the session: no trigger.

Sessions are computed in event time, whatever order the events arrive in within the allowed
lateness: the rule keeps the clickstream events of the sessions still open (their time, id
and viewed product) and the goal times that may still fall in one, and after each event
recomputes those sessions and their timers. A late event may extend a session, merge two,
or start one in between; orders come on their own topic, read side by side with the
clickstream, so a goal may arrive before the views it follows. A session is dropped from
the state once it is settled: its timer fired, or (no timer: converted or too few views) no
accepted clickstream event can reach it any more (its end is older than the newest
clickstream event minus the lateness).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, ClassVar

from processors.features.base import MINUTE_MS, Observed
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec, fire_timer
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer

SLOT = "browse"
GOALS = frozenset({"add_to_cart", "checkout_started", "order_placed"})
MAX_GOALS = 1000  # goal times kept (the newest)
MAX_OPEN_EVENTS = 5000  # clickstream events of open sessions kept (the newest)
START = "session_start_ms"  # kept in the timer, not in the trigger
_TIME_AND_ID = itemgetter(0, 1)  # events order by (time, event id), which is unique


@dataclass(frozen=True)
class BrowseAbandoned:
    """The ``[browse_abandoned]`` section of ``rules.toml``."""

    enabled: bool = True
    session_gap_minutes: int = 30
    min_product_views: int = 2
    max_products: int = 10


@dataclass(slots=True)
class BrowseSessions:
    """The open sessions' clickstream, sorted by (time, event id): product id for product views, else None."""

    events: list[tuple[int, str, str | None]] = field(default_factory=list)
    goals: list[int] = field(default_factory=list)  # goal times, sorted


@dataclass(frozen=True, slots=True)
class _Session:
    start_ms: int
    last_ms: int
    anchor_id: str
    views: int
    products: tuple[str, ...]  # distinct, newest first
    end: int  # index after its last event in ``BrowseSessions.events``


class BrowseAbandonedRule(RuleBase):
    name = "browse_abandoned"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream", "orders"})

    def __init__(self, config: BrowseAbandoned, lateness_ms: int) -> None:
        self.enabled = config.enabled
        self.gap_ms = config.session_gap_minutes * MINUTE_MS
        self.min_views = config.min_product_views
        self.max_products = config.max_products
        self.lateness_ms = lateness_ms

    def init(self) -> BrowseSessions:
        return BrowseSessions()

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        own = self._own(state)
        kind, t = seen.type, seen.t_ms
        if seen.topic == "clickstream":
            product = seen.event.product_id if kind == "product_view" else None
            bisect.insort(own.events, (t, seen.event_id, product), key=_TIME_AND_ID)
            del own.events[:-MAX_OPEN_EVENTS]
        if kind in GOALS:
            bisect.insort(own.goals, t)
            del own.goals[:-MAX_GOALS]
        self._rearm(state, own)
        return []

    def on_timer(self, state: TriggerState, timer: Timer) -> Fired | None:
        own = self._own(state)
        # The session is settled: its events go (a later event starts a new session).
        own.events = own.events[bisect.bisect_right(own.events, (timer.anchor_ms, timer.anchor_id), key=_TIME_AND_ID):]
        fired = fire_timer(timer)
        return replace(fired, context={k: v for k, v in fired.context.items() if k != START})

    def _own(self, state: TriggerState) -> BrowseSessions:
        own = state.rules[self.name]
        if not isinstance(own, BrowseSessions):
            # A state from before sessions were kept in event time: its timers stay and fire; the
            # sessions it summed up are not known event by event, so new ones start from here.
            own = state.rules[self.name] = BrowseSessions()
        return own

    def sessions(self, own: BrowseSessions) -> list[_Session]:
        """The open sessions, oldest first."""
        out: list[_Session] = []
        events = own.events
        i = 0
        while i < len(events):
            start = events[i][0]
            j = i + 1
            while j < len(events) and events[j][0] - events[j - 1][0] <= self.gap_ms:
                j += 1
            viewed = [product for _, _, product in events[i:j] if product is not None]
            distinct = list(dict.fromkeys(reversed(viewed)))[:self.max_products]  # newest view of each first
            last_ms, anchor_id, _ = events[j - 1]
            out.append(_Session(start, last_ms, anchor_id, len(viewed), tuple(distinct), j))
            i = j
        return out

    def _converted(self, own: BrowseSessions, session: _Session) -> bool:
        at = bisect.bisect_left(own.goals, session.start_ms)
        return at < len(own.goals) and own.goals[at] <= session.last_ms + self.gap_ms

    def _rearm(self, state: TriggerState, own: BrowseSessions) -> None:
        """Replace the timers of the open sessions by those their events and goals give now; drop settled ones."""
        first = own.events[0][0] if own.events else None
        state.timers[:] = [timer for timer in state.timers if timer.slot != SLOT or first is None
                           or timer.anchor_ms < first]  # a settled session's timer stays until it fires
        newest = state.newest.get("clickstream")
        horizon = None if newest is None else newest - self.lateness_ms  # no accepted clickstream before this
        settled = 0  # events of the leading sessions that are settled and have no timer
        leading = True
        for session in self.sessions(own):
            timed = session.views >= self.min_views and not self._converted(own, session)
            if leading and not timed and horizon is not None and session.last_ms + self.gap_ms < horizon:
                settled = session.end  # nothing accepted from now on can join it or convert it
                continue
            leading = False
            if timed:
                state.timers.append(Timer(self.name, SLOT, session.last_ms, session.anchor_id,
                                          session.last_ms + self.gap_ms, session.products, self._context(session)))
        if settled:
            del own.events[:settled]
        if horizon is not None:
            floor = min(horizon, own.events[0][0]) if own.events else horizon
            del own.goals[:bisect.bisect_left(own.goals, floor)]

    def _context(self, session: _Session) -> dict[str, Any]:
        return {"reason": f"{session.views} product view(s) in a session and nothing added to the cart",
                "product_views": session.views, START: session.start_ms}


SPECS = (RuleSpec("browse_abandoned", BrowseAbandoned(),
                  lambda section, config: BrowseAbandonedRule(section, config.lateness_ms)),)
