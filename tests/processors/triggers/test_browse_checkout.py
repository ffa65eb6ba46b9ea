"""Browse abandoned (session with product views, no cart) and checkout abandoned (no order within 1 h)."""

from __future__ import annotations

from tests.processors.triggers.helpers import at, event, iso, of, run

END = at(days=1)


def browse(records):  # type: ignore[no-untyped-def]
    return of(run(records, END), "browse_abandoned")


def checkout(records):  # type: ignore[no-untyped-def]
    return of(run(records, END), "checkout_abandoned")


def test_browse_fires_when_the_session_ends_with_the_viewed_products_newest_first() -> None:
    fired = browse([event("product_view", at(0), product_id="a"), event("page_view", at(10)),
                    event("product_view", at(20), product_id="b"), event("product_view", at(25), product_id="a")])
    assert len(fired) == 1
    assert fired[0]["fired_at"] == iso(at(55)), "session end: last clickstream event + 30 min gap"
    assert fired[0]["products"] == ["a", "b"]
    assert fired[0]["context"]["product_views"] == 3


def test_browse_needs_enough_views_and_no_cart() -> None:
    assert browse([event("product_view", at(0))]) == [], "one view is below min_product_views"
    views = [event("product_view", at(0)), event("product_view", at(1))]
    assert browse([*views, event("add_to_cart", at(5))]) == []
    assert browse([*views, event("order_placed", at(5))]) == []
    assert len(browse(views)) == 1


def test_browse_counts_per_session() -> None:
    # two views 40 minutes apart are two sessions of one view each
    assert browse([event("product_view", at(0)), event("product_view", at(40))]) == []
    # a cart in the first session does not spoil the second
    fired = browse([event("product_view", at(0)), event("product_view", at(1)), event("add_to_cart", at(2)),
                    event("product_view", at(100)), event("product_view", at(101))])
    assert [t["fired_at"] for t in fired] == [iso(at(131))]


def test_browse_sessions_are_in_event_time_whatever_the_arrival_order() -> None:
    # A late view at 25 min bridges 0 and 50 (the gap is 30): one session of three views, ending at 50 + 30.
    a, b, c = (event("product_view", at(m), product_id=p) for m, p in ((0, "a"), (25, "b"), (50, "c")))
    in_order, late = browse([a, b, c]), browse([a, c, b])
    assert [(t["fired_at"], t["products"], t["context"]["product_views"]) for t in in_order] == \
        [(iso(at(80)), ["c", "b", "a"], 3)]
    assert late == in_order, "same trigger, same id (anchored on the session's latest event)"
    # A cart that arrives after the later views still converts the session it happened in.
    assert browse([event("product_view", at(0)), event("product_view", at(20)), event("add_to_cart", at(10))]) == []


def test_checkout_fires_an_hour_later_without_an_order() -> None:
    fired = checkout([event("checkout_started", at(0), cart_value=42.5, currency="EUR", items=2)])
    assert [t["fired_at"] for t in fired] == [iso(at(60))]
    assert fired[0]["context"] == {"cart_value": 42.5, "currency": "EUR", "cart_items": 2}
    assert checkout([event("checkout_started", at(0)), event("order_placed", at(59))]) == []
    assert checkout([event("checkout_started", at(0)), event("order_placed", at(60))]) == []
    assert len(checkout([event("checkout_started", at(0)), event("order_placed", at(61))])) == 1


def test_a_second_checkout_restarts_the_hour_and_one_before_the_order_is_done() -> None:
    fired = checkout([event("checkout_started", at(0)), event("checkout_started", at(30))])
    assert [t["fired_at"] for t in fired] == [iso(at(90))]
    assert checkout([event("order_placed", at(10)), event("checkout_started", at(5))]) == []


def test_checkout_cancels_the_cart_reminder_but_not_the_other_way_round() -> None:
    triggers = run([event("add_to_cart", at(0)), event("checkout_started", at(10))], END)
    assert of(triggers, "cart_abandoned") == []
    assert len(of(triggers, "checkout_abandoned")) == 1
