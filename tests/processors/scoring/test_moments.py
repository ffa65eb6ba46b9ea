"""A score is made only when the profile changes in a way that matters: a new session, a cart change, an
order; not a second product view in the same session. Both hosts agree: the replay, and a scorer fed a
profile after every event (as the stream's features processor may emit them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from processors.features.build import build_features
from processors.scoring.config import load_scoring
from processors.scoring.processor import ScoringProcessor
from processors.scoring.replay import replay
from streams.sources.record import SourceRecord, record_of_dict

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
#: (minutes after START, event type, product); the comment says whether a score is due.
VISIT = [
    (0, "product_view", "p1"),  # first event, a new session: propensity
    (5, "product_view", "p2"),  # the same session, nothing else moved: none
    (10, "add_to_cart", "p2"),  # the cart changed: propensity
    (12, "product_view", "p3"),  # none
    (14, "product_view", "p2"),  # none
    (180, "product_view", "p1"),  # a new session: propensity
    (185, "order_placed", "p1"),  # an order: propensity and churn (now eligible)
    (186, "product_view", "p4"),  # none
]
EXPECTED = [("purchase_propensity", 0), ("purchase_propensity", 10), ("purchase_propensity", 180),
            ("purchase_propensity", 185), ("churn", 185)]


def records() -> list[SourceRecord]:
    out = []
    for n, (minutes, kind, product) in enumerate(VISIT):
        t = START + timedelta(minutes=minutes)
        body: dict[str, Any] = {"event_id": f"ev-{n}", "customer_id": "c1", "event_time": t, "type": kind}
        if kind == "order_placed":
            body |= {"order_id": "o1", "amount": 20.0, "items": [{"product_id": product, "unit_price": 20.0}]}
        else:
            body |= {"product_id": product, "price": 20.0} | ({"quantity": 1} if kind == "add_to_cart" else {})
        out.append(record_of_dict(body, t))
    return out


def minutes(scores: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted((s["model"], round((datetime.fromisoformat(s["scored_at"]) - START).total_seconds() / 60))
                  for s in scores)


def test_the_replay_scores_a_new_session_a_cart_change_and_an_order_only() -> None:
    # ... and re-scores an hour after the cart change (processors/scoring/rescore.py), the replay's clock
    # having passed it (the new session at 180); the next re-scores (240, 245) are after the last event.
    assert minutes(replay(records(), load_scoring()).scores) == sorted([*EXPECTED, ("purchase_propensity", 70)])


def test_a_scorer_given_a_profile_after_every_event_scores_the_same_moments() -> None:
    features, scoring = build_features(), ScoringProcessor(load_scoring())
    f_state, s_state = features.new_state("c1"), scoring.new_state("c1")
    scores = []
    for record in records():
        features.process(f_state, record.topic, record.value, record.key)
        profile = orjson.dumps(features.profile(f_state))
        scores += [orjson.loads(v) for topic, _, v in scoring.process(s_state, "customer-features", profile, b"c1")
                   if topic == "scores"]
    # the same moments as the replay: the re-score due 1 h after minute 10 runs before the next profile
    assert minutes(scores) == sorted([*EXPECTED, ("purchase_propensity", 70)])
    assert s_state.rescore_ms == round((START + timedelta(minutes=185 + 60)).timestamp() * 1000)
