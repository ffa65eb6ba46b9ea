"""Score band crossings: high purchase intent and churn risk.

A ``scores`` record (``schemas.outputs.Score``) fires when its model's band crosses
into the configured band: the band is that band and the previous score of the same
model for this customer was in another band (or there was none). Scores older than the
newest one seen for the model are ignored (the processor keeps the newest per model),
cold-start scores fire nothing when ``skip_cold_start`` is on, and churn risk fires only
for a customer who has ordered. The trigger fires at the score's ``scored_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec
from processors.triggers.state import TriggerState


@dataclass(frozen=True)
class BandCrossing:
    """The ``[high_intent]`` and ``[churn_risk]`` sections of ``rules.toml``."""

    enabled: bool = True
    model: str = "purchase_propensity"
    band: str = "high"
    skip_cold_start: bool = True


class BandCrossingRule(RuleBase):
    topics: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, config: BandCrossing, requires_order: bool) -> None:
        self.name = name
        self.enabled = config.enabled
        self.model = config.model
        self.band = config.band
        self.skip_cold_start = config.skip_cold_start
        self.requires_order = requires_order

    def on_score(self, state: TriggerState, score: Any, previous_band: str | None) -> list[Fired]:
        if score.model != self.model or score.band != self.band or previous_band == self.band:
            return []
        if self.skip_cold_start and score.cold_start:
            return []
        t_ms = round(score.scored_at.timestamp() * 1000)
        if self.requires_order and not state.has_ordered(t_ms):
            return []
        context = {"model": score.model, "model_version": score.model_version,
                   "probability": round(score.probability, 6), "band": score.band, "previous_band": previous_band}
        reason = f"{score.model} score crossed into the {score.band} band (from {previous_band or 'no score'})"
        return [Fired(self.name, t_ms, score.score_id, "score", reason, (), context)]


SPECS = (
    RuleSpec("high_intent", BandCrossing(),
             lambda section, config: BandCrossingRule("high_intent", section, requires_order=False)),
    RuleSpec("churn_risk", BandCrossing(model="churn"),
             lambda section, config: BandCrossingRule("churn_risk", section, requires_order=True)),
)
