"""A small generator replay shared by the scoring tests (computed once per session)."""

from __future__ import annotations

import dataclasses

import pytest

from processors.scoring.config import ScoringConfig, load_scoring
from processors.scoring.replay import ReplayResult, replay
from streams.sources.generator import Generator
from streams.sources.record import SourceRecord

#: Short horizons so that a 40-day replay of 300 customers has both labels of both models.
CONFIG: ScoringConfig = dataclasses.replace(
    load_scoring(),
    churn=dataclasses.replace(load_scoring().churn, horizon_days=7),
    evaluation=dataclasses.replace(load_scoring().evaluation, metrics_every_labels=200),
    learning=dataclasses.replace(load_scoring().learning, min_labels=50),
)


@pytest.fixture(scope="session")
def traffic() -> tuple[list[SourceRecord], Generator]:
    generator = Generator(customers=300, days=40, seed=11)
    return generator.records(), generator


@pytest.fixture(scope="session")
def replayed(traffic: tuple[list[SourceRecord], Generator]) -> ReplayResult:
    return replay(traffic[0], CONFIG)
