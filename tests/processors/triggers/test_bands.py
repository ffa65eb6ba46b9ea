"""High intent and churn risk: a score crossing into the high band."""

from __future__ import annotations

from tests.processors.triggers.helpers import at, event, iso, of, profile, run, score


def test_high_intent_fires_on_crossing_into_high_only() -> None:
    triggers = run([score("purchase_propensity", "low", at(0)), score("purchase_propensity", "medium", at(1)),
                    score("purchase_propensity", "high", at(2), score_id="s-up"),
                    score("purchase_propensity", "high", at(3)),
                    score("purchase_propensity", "medium", at(4)), score("purchase_propensity", "high", at(5))])
    fired = of(triggers, "high_intent")
    assert [t["fired_at"] for t in fired] == [iso(at(2)), iso(at(5))]
    assert fired[0]["fired_by"] == "score" and fired[0]["source_event_id"] == "s-up"
    assert fired[0]["context"]["previous_band"] == "medium"


def test_a_first_score_in_high_crosses_but_cold_start_and_stale_scores_do_not() -> None:
    assert len(of(run([score("purchase_propensity", "high", at(0))]), "high_intent")) == 1
    assert of(run([score("purchase_propensity", "high", at(0), cold_start=True)]), "high_intent") == []
    # an older score arriving late is ignored: no crossing from it
    assert of(run([score("purchase_propensity", "low", at(5)),
                   score("purchase_propensity", "high", at(1))]), "high_intent") == []


def test_churn_risk_needs_a_customer_who_has_ordered() -> None:
    assert of(run([score("churn", "high", at(0))]), "churn_risk") == []
    fired = of(run([event("order_placed", at(0)), score("churn", "high", at(10))]), "churn_risk")
    assert len(fired) == 1
    # or whose profile counts an order the processor never saw
    assert len(of(run([profile(at(0), orders_total=3), score("churn", "high", at(1))]), "churn_risk")) == 1


def test_models_do_not_mix() -> None:
    triggers = run([score("churn", "high", at(0)), score("purchase_propensity", "low", at(1))])
    assert of(triggers, "high_intent") == [] and of(triggers, "churn_risk") == []


def test_a_score_for_another_customer_on_this_key_is_refused() -> None:
    topic, _, value, _t = score("churn", "high", at(0), customer="other")
    from processors.triggers.processor import TriggersProcessor

    processor = TriggersProcessor()
    state = processor.new_state("c1")
    assert processor.process(state, topic, value, b"c1") == []
    assert processor.invalid == 1
