"""Cart abandoned: fires 30 minutes after the last cart change unless a checkout or an order came first."""

from __future__ import annotations

from processors.triggers.processor import TriggersProcessor
from streams.replay_host import Replay
from tests.processors.triggers.helpers import MINUTE, at, event, iso, of, run


def carts(records, until=None):  # type: ignore[no-untyped-def]
    return of(run(records, until if until is not None else at(24 * 60)), "cart_abandoned")


def test_fires_at_the_deadline_with_the_cart_lines() -> None:
    fired = carts([event("add_to_cart", at(0), product_id="p1", quantity=2),
                   event("add_to_cart", at(5), product_id="p2")])
    assert len(fired) == 1
    assert fired[0]["fired_at"] == iso(at(35))
    assert fired[0]["fired_by"] == "timer"
    assert fired[0]["products"] == ["p1", "p2"]
    assert fired[0]["context"]["cart_items"] == 3


def test_not_before_the_deadline_and_exactly_thirty_minutes_is_still_within() -> None:
    assert carts([event("add_to_cart", at(0))], until=at(30)) == []
    assert carts([event("add_to_cart", at(0))], until=at(30) + 1) != []
    # an order exactly at the deadline is "within 30 minutes": no trigger
    assert carts([event("add_to_cart", at(0)), event("order_placed", at(30))]) == []


def test_an_order_or_a_checkout_in_the_period_cancels() -> None:
    assert carts([event("add_to_cart", at(0)), event("order_placed", at(10))]) == []
    assert carts([event("add_to_cart", at(0)), event("checkout_started", at(29))]) == []


def test_an_order_after_the_deadline_does_not_cancel_even_if_the_host_fires_late() -> None:
    # the host's clock has not passed the deadline when the order arrives: the cart was abandoned all the same
    fired = carts([event("add_to_cart", at(0)), event("order_placed", at(45))])
    assert [t["fired_at"] for t in fired] == [iso(at(30))]


def test_emptying_the_cart_cancels_and_a_partial_remove_rearms() -> None:
    assert carts([event("add_to_cart", at(0)), event("remove_from_cart", at(10))]) == []
    fired = carts([event("add_to_cart", at(0), quantity=2), event("remove_from_cart", at(10))])
    assert [t["fired_at"] for t in fired] == [iso(at(40))]


def test_items_added_before_the_latest_order_are_gone() -> None:
    assert carts([event("order_placed", at(5)), event("add_to_cart", at(5))]) == []
    assert carts([event("order_placed", at(5)), event("add_to_cart", at(4))]) == []


def test_a_new_cart_after_an_order_fires_again() -> None:
    fired = carts([event("add_to_cart", at(0)), event("order_placed", at(10)), event("add_to_cart", at(60))])
    assert [t["fired_at"] for t in fired] == [iso(at(90))]


def test_each_abandonment_period_fires_once() -> None:
    fired = carts([event("add_to_cart", at(0)), event("add_to_cart", at(100)), event("add_to_cart", at(110))])
    assert [t["fired_at"] for t in fired] == [iso(at(30)), iso(at(140))]


def test_other_customers_do_not_interfere() -> None:
    fired = carts([event("add_to_cart", at(0), customer="a"), event("order_placed", at(5), customer="b")])
    assert [t["customer_id"] for t in fired] == ["a"]


def test_wall_clock_fires_without_any_further_event() -> None:
    processor = TriggersProcessor()
    state = processor.new_state("c1")
    topic, key, value, _ = event("add_to_cart", at(0))
    assert processor.process(state, topic, value, key) == []
    assert processor.next_timer(state) == at(30)
    delay = processor.config.live_delay_ms
    assert processor.due(state, processor.live_clock(at(30) + delay)) == []  # within the live delay
    out = processor.due(state, processor.live_clock(at(31) + delay))
    assert len(out) == 1 and out[0][0] == "triggers"
    assert processor.next_timer(state) is None
    assert processor.due(state, at(24 * 60)) == [], "fires once"


def test_event_time_watermark_fires_in_a_replay() -> None:
    replay = Replay(TriggersProcessor())
    replay.feed([event("add_to_cart", at(0), customer="a")])
    assert replay.outputs == []
    replay.feed([event("page_view", at(31), customer="b")])  # another customer moves the watermark
    assert len(replay.outputs) == 1


def test_late_arrivals_within_the_lateness_give_the_same_trigger() -> None:
    add0, add10 = event("add_to_cart", at(0), event_id="x0"), event("add_to_cart", at(10), event_id="x10")
    in_order = carts([add0, add10])
    assert carts([add10, add0]) == in_order
    assert len(in_order) == 1 and in_order[0]["source_event_id"] == "x10"
    order = event("order_placed", at(20))
    assert carts([add10, order, add0]) == carts([add0, add10, order]) == []


def test_disabled_rule_fires_nothing() -> None:
    from processors.triggers.config import rules_from_dict

    processor = TriggersProcessor(rules_from_dict({"cart_abandoned": {"enabled": False}}))
    assert of(run([event("add_to_cart", at(0))], at(60), processor), "cart_abandoned") == []
    processor = TriggersProcessor(rules_from_dict({"cart_abandoned": {"after_minutes": 5}}))
    fired = of(run([event("add_to_cart", at(0))], at(60), processor), "cart_abandoned")
    assert [t["fired_at"] for t in fired] == [iso(at(0) + 5 * MINUTE)]


def test_a_late_remove_that_empties_a_later_cart_cancels_it() -> None:
    add, late = event("add_to_cart", at(0), quantity=2), event("remove_from_cart", at(5))
    later = event("remove_from_cart", at(10))  # leaves one item until the late remove arrives
    assert len(carts([add, later])) == 1
    assert carts([add, later, late]) == carts([add, late, later]) == []
