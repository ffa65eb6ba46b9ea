"""Every guard with the outcome it records: holdout, cooldown, consent, frequency caps, quiet hours."""

from __future__ import annotations

import dataclasses
import pickle

from processors.messages.config import Holdout, MessagesConfig
from processors.messages.holdout import holdout_bucket, in_holdout
from tests.processors.messages.helpers import NO_HOLDOUT, Run, consent, decisions, messages, trigger
from tests.processors.triggers.helpers import HOUR, at, event, iso, profile


def test_a_web_customer_without_consent_events_gets_in_app_only() -> None:
    run = Run()
    out = run.feed(trigger("cart_abandoned", at(0), products=("p1",), context={"cart_items": 2}))
    assert decisions(out) == [
        ("holdout", "passed", None), ("cooldown", "passed", None),
        ("consent", "blocked", "email"), ("consent", "blocked", "push"),
        ("consent", "passed", "in_app"), ("frequency_cap", "passed", "in_app"), ("channel", "passed", "in_app"),
    ]
    (message,) = messages(out)
    assert (message["channel"], message["trigger"], message["send_at"], message["deferred"]) == (
        "in_app", "cart_abandoned", iso(at(0)), False)


def test_granted_email_is_chosen_first_for_a_web_customer_and_passes_quiet_hours_by_day() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-60)))
    out = run.feed(trigger("cart_abandoned", at(0), context={"cart_items": 1}))
    assert decisions(out)[2:] == [("consent", "passed", "email"), ("frequency_cap", "passed", "email"),
                                  ("channel", "passed", "email"), ("quiet_hours", "passed", "email")]
    assert messages(out)[0]["channel"] == "email"


def test_consent_withdrawal_blocks_marketing_but_not_service_messages() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-120)), consent("email", "withdrawn", at(-60)))
    marketing = run.feed(trigger("win_back", at(0), context={"inactive_days": 60}))
    assert ("consent", "blocked", "email") in decisions(marketing)
    assert messages(marketing)[0]["channel"] == "in_app"
    service = run.feed(trigger("unhappy_customer", at(1), service=True))
    assert decisions(service)[2:5] == [("consent", "exempt", "email"), ("frequency_cap", "exempt", "email"),
                                       ("channel", "passed", "email")]
    (message,) = messages(service)
    assert (message["channel"], message["service"], message["recommendations"]) == ("email", True, [])
    assert "This is a service message" in message["body"]


def test_a_withdrawal_of_service_contact_keeps_service_messages_off_that_channel() -> None:
    run = Run()
    run.feed(consent("email", "withdrawn", at(-1), purpose="service"))
    out = run.feed(trigger("unhappy_customer", at(0), service=True))
    assert decisions(out)[2:5] == [("consent", "blocked", "email"), ("consent", "exempt", "sms"),
                                   ("frequency_cap", "exempt", "sms")]
    assert messages(out)[0]["channel"] == "sms"


def test_consent_events_fold_by_event_time_not_arrival() -> None:
    run = Run()
    run.feed(consent("email", "withdrawn", at(-10)), consent("email", "granted", at(-20)))  # older grant arrives late
    assert messages(run.feed(trigger("high_intent", at(0))))[0]["channel"] == "in_app"


def test_cooldown_blocks_the_same_trigger_within_its_hours_and_not_after() -> None:
    run = Run()
    assert messages(run.feed(trigger("cart_abandoned", at(0), context={"cart_items": 1})))
    again = run.feed(trigger("cart_abandoned", at(60 * 23), context={"cart_items": 1}))
    assert decisions(again) == [("holdout", "passed", None), ("cooldown", "blocked", None)]
    assert not messages(again)
    other = run.feed(trigger("browse_abandoned", at(60 * 23)))  # another trigger: its own cooldown
    assert messages(other)
    later = run.feed(trigger("cart_abandoned", at(60 * 24), context={"cart_items": 1}))
    assert ("cooldown", "passed", None) in decisions(later) and messages(later)


def test_a_redelivered_trigger_is_decided_once() -> None:
    run = Run()
    record = trigger("high_intent", at(0), trigger_id="trg-same")
    assert messages(run.feed(record))
    assert run.feed(record) == []


def test_frequency_cap_per_channel_over_a_rolling_window() -> None:
    config = dataclasses.replace(NO_HOLDOUT, cooldown_hours=dataclasses.replace(NO_HOLDOUT.cooldown_hours,
                                                                                 high_intent=0))
    run = Run(config)
    run.feed(consent("email", "granted", at(-60)))
    first = run.feed(trigger("high_intent", at(0)), trigger("high_intent", at(60)))
    assert [m["channel"] for m in messages(first)] == ["email", "email"]
    third = run.feed(trigger("high_intent", at(120)))  # email: 2 per 24 h reached, falls back to in-app
    assert ("frequency_cap", "blocked", "email") in decisions(third)
    assert messages(third)[0]["channel"] == "in_app"
    rolled = run.feed(trigger("high_intent", at(24 * 60 + 1)))  # the first left the 24 h window
    assert messages(rolled)[0]["channel"] == "email"
    detail = next(d for t, d in third if t == "message-decisions" and d["guard"] == "frequency_cap")["detail"]
    assert detail == "cap 2 per 24h reached"


def test_service_messages_are_exempt_from_caps() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-60)))
    run.feed(trigger("high_intent", at(0)), trigger("churn_risk", at(1)))  # the 2 e-mails of the day
    out = run.feed(trigger("unhappy_customer", at(2), service=True))
    assert ("frequency_cap", "exempt", "email") in decisions(out)
    assert messages(out)[0]["channel"] == "email"


def test_no_channel_left_is_recorded() -> None:
    config = dataclasses.replace(NO_HOLDOUT, consent=dataclasses.replace(NO_HOLDOUT.consent, assumed_granted=()))
    out = Run(config).feed(trigger("high_intent", at(0)))
    assert decisions(out)[-1] == ("channel", "blocked", None)
    assert not messages(out)


def test_quiet_hours_defer_to_the_end_in_the_customers_zone() -> None:
    run = Run()
    run.feed(event("consent_changed", at(-600), "c1", channel="email", status="granted",
                   time_zone="America/Sao_Paulo"),
             profile(at(-600), top_categories="shoes,bags"))
    # 2024-03-05 01:00 UTC is 22:00 in Sao Paulo (UTC-3): quiet until 08:00 there, 11:00 UTC.
    fired = at(15 * 60)
    out = run.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}))
    ends = at(25 * 60)
    assert decisions(out)[-1] == ("quiet_hours", "deferred", "email")
    deferral = [d for t, d in out if t == "message-decisions"][-1]
    assert deferral["deferred_until"] == iso(ends) and deferral["detail"] == "quiet hours in America/Sao_Paulo"
    assert not messages(out), "deferred, not sent at once"
    state = run.state()
    assert run.processor.next_timer(state) == ends
    assert run.due(ends) == []  # released after the end, like every timer
    (message,) = messages(run.due(ends + 1))
    assert (message["send_at"], message["deferred"], message["channel"]) == (iso(ends), True, "email")
    assert run.processor.next_timer(state) is None


def test_a_goal_before_the_deferred_send_cancels_it_and_frees_cap_and_cooldown() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-600)))
    fired = at(12 * 60)  # 22:00 UTC: quiet until 08:00 UTC
    run.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}))
    out = run.feed(event("order_placed", fired + HOUR))
    assert decisions(out) == [("goal", "cancelled", "email")]
    assert run.due(at(24 * 60)) == []
    state = run.state()
    assert state.sent == [] and "cart_abandoned" not in state.last_messaged
    again = run.feed(trigger("cart_abandoned", fired + 2 * HOUR, context={"cart_items": 1}))
    assert ("cooldown", "passed", None) in decisions(again)


def test_consent_withdrawn_while_deferred_blocks_the_release() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-600)))
    run.feed(trigger("high_intent", at(12 * 60)))
    run.feed(consent("email", "withdrawn", at(13 * 60)))
    out = run.due(at(24 * 60))
    assert decisions(out) == [("consent", "blocked", "email")]
    assert next(d for _, d in out)["detail"] == "at release: marketing consent withdrawn"


def test_holdout_records_the_trigger_and_makes_no_message() -> None:
    config = MessagesConfig()  # shipped share 0.1
    held = next(f"c{i}" for i in range(1000) if in_holdout(f"c{i}", 0.1, config.holdout.salt))
    out = Run(config).feed(trigger("cart_abandoned", at(0), customer=held, context={"cart_items": 1}))
    assert decisions(out) == [("holdout", "held_out", None)]
    assert not messages(out)


def test_a_held_out_customer_still_gets_a_service_escalation_recorded_as_exempt() -> None:
    config = MessagesConfig()  # shipped share 0.1
    held = next(f"c{i}" for i in range(1000) if in_holdout(f"c{i}", 0.1, config.holdout.salt))
    run = Run(config)
    run.feed(consent("email", "granted", at(-60), customer=held))
    marketing = run.feed(trigger("cart_abandoned", at(0), customer=held, context={"cart_items": 1}))
    assert decisions(marketing) == [("holdout", "held_out", None)] and not messages(marketing)
    service = run.feed(trigger("unhappy_customer", at(1), customer=held, service=True))
    assert decisions(service) == [("holdout", "exempt", None), ("cooldown", "passed", None),
                                  ("consent", "exempt", "email"), ("frequency_cap", "exempt", "email"),
                                  ("channel", "passed", "email"), ("quiet_hours", "passed", "email")]
    assert service[0][1]["detail"] == "service message: the holdout does not apply"
    (message,) = messages(service)
    assert (message["customer_id"], message["trigger"], message["channel"], message["service"]) == (
        held, "unhappy_customer", "email", True)


def test_holdout_hash_is_stable_and_takes_its_share() -> None:
    salt = Holdout().salt
    assert holdout_bucket("customer-42", salt) == holdout_bucket("customer-42", salt)
    assert holdout_bucket("customer-42", salt) != holdout_bucket("customer-42", "another-salt")
    ids = [f"cust-{i}" for i in range(20_000)]
    share = sum(in_holdout(c, 0.1, salt) for c in ids) / len(ids)
    assert abs(share - 0.1) < 0.006  # binomial sd is 0.0021 at n=20k
    assert not any(in_holdout(c, 0.0, salt) for c in ids[:1000])
    assert all(in_holdout(c, 1.0, salt) for c in ids[:1000])
    smaller = {c for c in ids if in_holdout(c, 0.05, salt)}
    assert smaller <= {c for c in ids if in_holdout(c, 0.1, salt)}, "a larger share only adds customers"


def test_state_pickles_with_a_held_message() -> None:
    run = Run()
    run.feed(consent("email", "granted", at(-600)), trigger("high_intent", at(12 * 60)))
    state = pickle.loads(pickle.dumps(run.state()))
    assert run.processor.next_timer(state) == at(22 * 60)


def test_caps_do_not_depend_on_how_far_other_topics_ran_ahead() -> None:
    run = Run(dataclasses.replace(NO_HOLDOUT, cooldown_hours=dataclasses.replace(NO_HOLDOUT.cooldown_hours,
                                                                                  high_intent=0)))
    run.feed(consent("email", "granted", at(-60)), trigger("high_intent", at(0)), trigger("high_intent", at(60)))
    run.feed(event("page_view", at(days=9)))  # the clickstream is days ahead of the triggers
    late = run.feed(trigger("high_intent", at(120)))
    assert ("frequency_cap", "blocked", "email") in decisions(late)


def test_quiet_hours_follow_the_newest_time_zone_an_event_reported() -> None:
    # 2024-03-05 01:00 UTC is 22:00 in Sao Paulo (quiet) and 10:00 in Tokyo (not quiet).
    fired = at(15 * 60)
    sao_paulo_then_tokyo = Run()
    sao_paulo_then_tokyo.feed(
        event("consent_changed", at(-600), "c1", channel="email", status="granted", time_zone="America/Sao_Paulo"),
        event("page_view", at(-300), "c1", time_zone="America/Los_Angeles"))
    out = sao_paulo_then_tokyo.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}))
    assert decisions(out)[-1] == ("quiet_hours", "passed", "email")
    # The same reports arriving the other way round: the newer one in event time still wins.
    sao_paulo_newer_arrives_first = Run()
    sao_paulo_newer_arrives_first.feed(
        event("page_view", at(-300), "c1", time_zone="America/Sao_Paulo"),
        event("consent_changed", at(-600), "c1", channel="email", status="granted", time_zone="America/Los_Angeles"))
    out = sao_paulo_newer_arrives_first.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}))
    assert decisions(out)[-1] == ("quiet_hours", "deferred", "email")
    deferral = [d for t, d in out if t == "message-decisions"][-1]
    assert deferral["detail"] == "quiet hours in America/Sao_Paulo"


def test_an_erased_customer_gets_one_privacy_block_recorded_under_the_hmac_only() -> None:
    run = Run()
    run.processor.erased_subject = lambda customer: "f00d" * 8 if customer == "c1" else None
    # Fixed trigger ids: the derived decision ids are hashes of them, which a counter-made id could make contain "c1".
    out = run.feed(trigger("cart_abandoned", at(0), customer="c1", context={"cart_items": 1}, trigger_id="trg-a"),
                   trigger("cart_abandoned", at(0), customer="c2", context={"cart_items": 1}, trigger_id="trg-b"))
    erased = [d for t, d in out if d["customer_id"] != "c2"]
    assert [(d["guard"], d["outcome"], d["customer_id"]) for d in erased] == [("privacy", "blocked", "f00d" * 8)]
    assert "c1" not in str(erased)
    assert len(messages(out)) == 1 and messages(out)[0]["customer_id"] == "c2"


def test_the_decision_is_the_same_whatever_the_arrival_order_of_later_events() -> None:
    """Consent and clicks dated after the trigger do not decide it, even when the host read them first."""
    fired = at(0)
    later = [consent("push", "granted", at(30)), consent("email", "withdrawn", at(40)),
             *[event("page_view", at(10 + n), channel="app") for n in range(5)]]
    before = [consent("email", "granted", at(-60)), event("page_view", at(-30), channel="web")]
    tid = "trg-arrival"
    first = Run()
    first.feed(*before)
    in_order = first.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}, trigger_id=tid))
    first.feed(*later)
    second = Run()
    second.feed(*before, *later)  # the later events arrive before the trigger
    out_of_order = second.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}, trigger_id=tid))
    assert messages(in_order) == messages(out_of_order)
    (message,) = messages(out_of_order)
    assert (message["channel"], message["message_id"]) == ("email", messages(in_order)[0]["message_id"])
    assert decisions(in_order) == decisions(out_of_order)


def test_language_and_time_zone_are_taken_as_of_the_trigger() -> None:
    """A chat in Portuguese and a zone dated after the trigger change neither its template nor its quiet hours."""
    fired = at(0)
    later = [event("chat_message", at(30), language="pt", text="obrigado pela ajuda"),
             event("page_view", at(31), channel="web", time_zone="America/Los_Angeles")]
    tid = "trg-hints"
    first = Run()
    first.feed(consent("email", "granted", at(-60)))
    in_order = first.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}, trigger_id=tid))
    second = Run()
    second.feed(consent("email", "granted", at(-60)), *later)
    out_of_order = second.feed(trigger("cart_abandoned", fired, context={"cart_items": 1}, trigger_id=tid))
    assert messages(in_order) == messages(out_of_order)
    assert decisions(in_order) == decisions(out_of_order)
    (message,) = messages(out_of_order)
    assert (message["locale"], message["deferred"]) == ("en", False)
