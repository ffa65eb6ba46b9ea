"""Labels are released by the scorer's timers, the host's one timer mechanism (issue 20): hosted by the
in-process harness, which fires timers as the Kafka host does, every held prediction whose horizon ended
before the clock comes out as a label, with the outcome the input's orders give (counted here from the
orders themselves), and none is released early or twice."""

from __future__ import annotations

from collections import defaultdict

import orjson

from processors.scoring.config import load_scoring
from processors.scoring.labels import ORDER_LABEL
from processors.scoring.processor import ScoringProcessor
from streams.host.testing import Harness
from tests.streams.host import workloads

DAY_MS = 86_400_000


def test_the_hosts_timers_release_every_held_label_with_the_outcome_its_orders_give() -> None:
    config = load_scoring()
    records = workloads.workloads()["scoring"]
    made: list[ScoringProcessor] = []

    def factory() -> ScoringProcessor:
        made.append(ScoringProcessor(config))
        return made[-1]

    newest = max(r[3] for r in records)
    until = newest + config.churn.horizon_ms + 2 * DAY_MS  # past every churn horizon held while the input lasted
    run = Harness(factory).run(records, until_ms=until)
    watermark = until - config.labels.lateness_ms

    orders: dict[str, list[int]] = defaultdict(list)
    for topic, key, value, event_ms in records:
        if topic == "orders" and value is not None and orjson.loads(value)["type"] == "order_placed":
            orders[key.decode()].append(event_ms)
    labels = [orjson.loads(v) for topic, _, v in run.outputs if topic == "model-labels" and v is not None]
    assert {label["model"] for label in labels} == {"purchase_propensity", "churn"}
    assert {label["label"] for label in labels} == {True, False}
    for label in labels:
        horizon = config.horizon_ms(label["model"])
        t = label["predicted_at_ms"]
        inside = sorted(o for o in orders[label["customer_id"]] if t < o <= t + horizon)
        assert label["labelled_at_ms"] == t + horizon < watermark
        assert label["ordered_at_ms"] == (inside[0] if inside else None)
        assert label["label"] == (ORDER_LABEL[label["model"]] == bool(inside)), label
    assert len({(x["customer_id"], x["model"], x["predicted_at_ms"]) for x in labels}) == len(labels)  # once each
    still_held = [h for state in run.states.values() for h in state.held]
    assert all(h.deadline_ms >= watermark for h in still_held)  # nothing due left behind
    assert len(made) == 1 and made[0].held == len(labels) + len(still_held) and made[0].expired == len(labels)
    # Every prediction held while the input lasted had its horizon end before the clock: all labelled.
    assert not [h for h in still_held if h.t_ms <= newest]
    assert sum(x["model"] == "churn" for x in labels) > 0
