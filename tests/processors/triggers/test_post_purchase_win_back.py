"""Post-purchase (review request after delivery, welcome on the first purchase) and win-back."""

from __future__ import annotations

from tests.processors.triggers.helpers import DAY, at, event, iso, of, profile, run

END = at(days=400)


def test_review_request_seven_days_after_delivery_per_order() -> None:
    triggers = run([event("order_placed", at(0), order_id="o1", items=[{"product_id": "p9"}]),
                    event("order_delivered", at(days=2), order_id="o1"),
                    event("order_placed", at(days=3), order_id="o2"),
                    event("order_delivered", at(days=4), order_id="o2")], at(days=30))
    fired = of(triggers, "review_request")
    assert [(t["context"]["order_id"], t["fired_at"]) for t in fired] == [("o1", iso(at(days=9))),
                                                                          ("o2", iso(at(days=11)))]
    assert fired[0]["products"] == ["p9"]
    assert of(run([event("order_delivered", at(0))], at(days=7)), "review_request") == [], "not before 7 days"


def test_a_refund_or_a_review_cancels_the_request() -> None:
    delivered = event("order_delivered", at(0), order_id="o1")
    assert of(run([delivered, event("order_refunded", at(days=1), order_id="o1")], END), "review_request") == []
    assert len(of(run([delivered, event("order_refunded", at(days=1), order_id="other")], END),
                  "review_request")) == 1
    review = event("chat_message", at(days=3), channel="review", text="good", conversation_id="r1")
    assert of(run([delivered, review], END), "review_request") == []


def test_welcome_on_the_first_purchase_only() -> None:
    triggers = run([event("order_placed", at(0), order_id="o1"), event("order_placed", at(10), order_id="o2")])
    fired = of(triggers, "welcome")
    assert len(fired) == 1 and fired[0]["context"]["order_id"] == "o1" and fired[0]["fired_at"] == iso(at(0))
    # a profile that already counts earlier orders: not a first purchase
    assert of(run([profile(at(0), orders_total=4), event("order_placed", at(5))]), "welcome") == []


def test_win_back_after_sixty_days_of_silence_from_a_buyer() -> None:
    triggers = run([event("order_placed", at(0)), event("page_view", at(days=10))], END)
    fired = of(triggers, "win_back")
    assert [t["fired_at"] for t in fired] == [iso(at(days=70))]
    assert fired[0]["context"]["days_since_last_order"] == 70
    assert of(run([event("page_view", at(0))], END), "win_back") == [], "never bought: no win-back"


def test_win_back_fires_once_per_silence() -> None:
    triggers = run([event("order_placed", at(0)), event("page_view", at(days=61)),
                    event("page_view", at(days=200))], END)
    assert [t["fired_at"] for t in of(triggers, "win_back")] == [iso(at(days=60)), iso(at(days=121)),
                                                                 iso(at(days=260))]
    quiet = run([event("order_placed", at(0))], at(0) + 60 * DAY)
    assert of(quiet, "win_back") == [], "exactly 60 days is not yet more than 60"
