"""The journey stage machine, through the processor's timers as a host fires them on the event-time watermark.

Every transition of the state machine in ``processors/features/stage.py``, including the ones that
time alone makes (a cart expires, a buyer who goes silent becomes at risk, then lapsed), and that the
final profiles depend only on the events and how far the clock went: not on when the timers fired,
on the arrival order within the lateness, or on a restart from pickled states.
"""

from __future__ import annotations

import pickle
from datetime import timedelta
from typing import Any

import orjson
import pytest

from processors.features.base import DAY_MS, Observed
from processors.features.config import FeatureConfig
from processors.features.engine import FeatureEngine, default_features
from processors.features.processor import FeaturesProcessor
from processors.features.segments import load_segments
from streams.replay_host import Replay
from tests.processors.features.events import START, journey_events, observe, shuffled_within, toy_scorer

CONFIG = FeatureConfig()
MINUTE_MS = 60_000
T0 = round(START.timestamp() * 1000)
#: Far past every deadline the synthetic histories set (their events span 45 days).
END = T0 + 400 * DAY_MS


def processor() -> FeaturesProcessor:
    return FeaturesProcessor(FeatureEngine(CONFIG, default_features(CONFIG, toy_scorer, -0.05), load_segments()))


def iso(t_ms: int) -> str:
    return (START + timedelta(milliseconds=t_ms - T0)).isoformat().replace("+00:00", "Z")


class Customer:
    """One customer's events through the in-process timer host; the watermark follows each event."""

    def __init__(self) -> None:
        self.processor = processor()
        self.replay = Replay(self.processor)
        self.n = 0

    def feed(self, *bodies: dict[str, Any]) -> dict[str, Any]:
        for body in bodies:
            self.n += 1
            full = {"event_id": f"e{self.n}", "customer_id": "c", **body}
            seen = observe(full)
            self.replay.feed([(seen.topic, b"c", orjson.dumps(full), seen.t_ms)])
        return self.profile()

    def advance(self, watermark_ms: int) -> dict[str, Any]:
        self.replay.advance(watermark_ms)
        return self.profile()

    def profile(self) -> dict[str, Any]:
        return self.processor.profile(self.replay.states["c"])

    def timer(self) -> int | None:
        return self.processor.next_timer(self.replay.states["c"])


def at(minutes: float) -> int:
    return T0 + round(minutes * MINUTE_MS)


def event(kind: str, t_ms: int, **fields: Any) -> dict[str, Any]:
    body = {"type": kind, "event_time": iso(t_ms), **fields}
    if kind in ("product_view", "add_to_cart", "remove_from_cart"):
        body.setdefault("product_id", "p")
    if kind == "order_placed":
        body.setdefault("order_id", f"o{t_ms}")
        body.setdefault("amount", 40.0)
    return body


def stage(p: dict[str, Any]) -> tuple[str, str | None, str]:
    return p["stage"], p["stage_since"], p["as_of"]


def test_a_visitor_and_a_browser_have_no_timer() -> None:
    c = Customer()
    assert stage(c.feed(event("page_view", at(0)))) == ("visitor", iso(at(0)), iso(at(0)))
    assert c.timer() is None
    assert stage(c.feed(event("product_view", at(5)))) == ("browser", iso(at(0)), iso(at(5)))
    assert c.timer() is None
    assert stage(c.advance(END)) == ("browser", iso(at(0)), iso(at(5))), "time alone does not move a browser"


def test_a_silent_carter_becomes_a_browser_when_the_cart_expires() -> None:
    c = Customer()
    c.feed(event("product_view", at(0)))
    assert stage(c.feed(event("add_to_cart", at(10)))) == ("carter", iso(at(10)), iso(at(10)))
    expires = at(10) + 30 * DAY_MS
    assert c.timer() == expires
    assert c.advance(expires)["stage"] == "carter", "a timer fires once the clock is past it"
    p = c.advance(expires + 1)
    assert stage(p) == ("browser", iso(at(0)), iso(expires))
    assert (p["features"]["cart_items"], p["last_seen"], p["events_total"]) == (0, iso(at(10)), 2)
    assert c.timer() is None


def test_checkout_stays_until_an_order_then_first_time_buyer_at_risk_and_lapsed() -> None:
    c = Customer()
    c.feed(event("add_to_cart", at(0)))
    assert stage(c.feed(event("checkout_started", at(3)))) == ("checkout", iso(at(3)), iso(at(3)))
    p = c.advance(at(3) + 40 * DAY_MS)
    assert stage(p) == ("checkout", iso(at(3)), iso(at(0) + 30 * DAY_MS)), "an open checkout does not expire"
    assert p["features"]["cart_items"] == 0

    order = at(3) + 41 * DAY_MS
    assert stage(c.feed(event("order_placed", order))) == ("first_time_buyer", iso(order), iso(order))
    at_risk, lapsed = order + 60 * DAY_MS, order + 180 * DAY_MS
    assert c.timer() == at_risk
    p = c.advance(at_risk + 1)
    assert stage(p) == ("at_risk", iso(at_risk), iso(at_risk))
    assert (p["features"]["recency_days"], p["features"]["orders_30d"], p["last_seen"]) == (60.0, 0, iso(order))
    assert c.timer() == lapsed
    p = c.advance(lapsed + 1)
    assert stage(p) == ("lapsed", iso(lapsed), iso(lapsed))
    assert (p["features"]["recency_days"], p["features"]["revenue_90d"]) == (180.0, 0.0)
    assert c.timer() is None


def test_a_repeat_buyer_lapses_in_one_step_when_the_clock_jumps_and_comes_back() -> None:
    c = Customer()
    c.feed(event("order_placed", at(0)))
    second = at(0) + 10 * DAY_MS
    assert stage(c.feed(event("order_placed", second))) == ("repeat_buyer", iso(second), iso(second))
    p = c.advance(second + 365 * DAY_MS)
    assert stage(p) == ("lapsed", iso(second + 180 * DAY_MS), iso(second + 180 * DAY_MS))
    assert p["features"]["recency_days"] == 180.0
    assert c.timer() is None

    back = second + 366 * DAY_MS
    p = c.feed(event("add_to_cart", back))
    assert stage(p) == ("carter", iso(back), iso(back)), "a lapsed customer who fills a cart is a carter"
    assert c.timer() == back + 30 * DAY_MS
    p = c.feed(event("order_placed", back + MINUTE_MS))
    assert stage(p) == ("repeat_buyer", iso(back + MINUTE_MS), iso(back + MINUTE_MS))
    assert (p["features"]["orders_total"], p["features"]["recency_days"]) == (3, 0.0)


def test_an_at_risk_customer_who_orders_again_is_a_repeat_buyer() -> None:
    c = Customer()
    c.feed(event("order_placed", at(0)))
    assert c.advance(at(0) + 90 * DAY_MS)["stage"] == "at_risk"
    again = at(0) + 90 * DAY_MS + MINUTE_MS
    assert stage(c.feed(event("order_placed", again))) == ("repeat_buyer", iso(again), iso(again))
    assert c.timer() == again + 60 * DAY_MS


def test_an_event_older_than_the_clock_is_counted_as_if_it_had_come_first() -> None:
    # The clock passed the first order's lapsed point; then a later order (older than the clock, newer than the
    # customer's newest order, so on time) arrives. The profile is the one of both orders as of the same clock.
    first, second = at(0), at(0) + 150 * DAY_MS
    clock = at(0) + 250 * DAY_MS
    late = Customer()
    late.feed(event("order_placed", first))
    assert late.advance(clock)["stage"] == "lapsed"
    late.feed(event("order_placed", second))
    on_time = Customer()
    on_time.feed(event("order_placed", first), event("order_placed", second))
    on_time.advance(clock)
    assert late.profile() == on_time.profile()
    assert stage(late.profile()) == ("at_risk", iso(second + 60 * DAY_MS), iso(second + 60 * DAY_MS))


def records(events: list[Observed]) -> list[tuple[str, bytes, bytes, int]]:
    return [(e.topic, e.event.customer_id.encode(), e.event.model_dump_json().encode(), e.t_ms) for e in events]


def profiles_after(replay: Replay) -> dict[str, dict[str, Any]]:
    replay.advance(END)
    processor = replay.processor
    assert isinstance(processor, FeaturesProcessor)
    return {key: processor.profile(state) for key, state in replay.states.items()}


@pytest.fixture(scope="module")
def events() -> list[Observed]:
    return journey_events(seed=11, customers=6)


def test_final_profiles_do_not_depend_on_when_timers_fire(events: list[Observed]) -> None:
    live = profiles_after(_fed(Replay(processor()), events))
    # no timer fires before the end: the watermark stays behind every event
    held_back = profiles_after(_fed(Replay(processor(), grace_ms=END), events))
    assert held_back == live
    stages = {p["stage"] for p in live.values()}
    assert {"at_risk", "lapsed"} & stages, f"the histories reach the time-driven stages: {stages}"
    assert all(p["as_of"] != p["last_seen"] for p in live.values() if p["stage"] in ("at_risk", "lapsed"))


@pytest.mark.parametrize("seed", [1, 2])
def test_final_profiles_are_order_independent_within_lateness(events: list[Observed], seed: int) -> None:
    shuffled = shuffled_within(events, CONFIG.allowed_lateness_ms // 2, seed)
    assert shuffled != events
    assert profiles_after(_fed(Replay(processor()), shuffled)) == profiles_after(_fed(Replay(processor()), events))


def test_a_restart_from_pickled_states_ends_with_the_same_profiles(events: list[Observed]) -> None:
    half = len(events) // 2
    first = _fed(Replay(processor()), events[:half])
    restored = Replay(processor(), states=pickle.loads(pickle.dumps(first.states)),
                      watermark_ms=first.watermark_ms)
    for key, state in restored.states.items():  # what the Kafka host does with a restored store
        restored.queue.set(key, restored.processor.next_timer(state))
    _fed(restored, events[half:])
    assert profiles_after(restored) == profiles_after(_fed(Replay(processor()), events))


def _fed(replay: Replay, events: list[Observed]) -> Replay:
    replay.feed(records(events))
    return replay
