"""Building the features processor from configuration (used by every host)."""

from __future__ import annotations

from pathlib import Path

from processors.features.config import FeatureConfig
from processors.features.engine import FeatureEngine, default_features
from processors.features.processor import FeaturesProcessor
from processors.features.segments import load_segments
from processors.sentiment import NEGATIVE_THRESHOLD, sentiment
from schemas.validation import Limits


def build_features(lateness_ms: int = 3_600_000, session_gap_ms: int = 1_800_000,
                   segments_file: Path | None = None, limits: Limits | None = None,
                   clock_topics: frozenset[str] | None = None) -> FeaturesProcessor:
    config = FeatureConfig(allowed_lateness_ms=lateness_ms, session_gap_ms=session_gap_ms)
    features = default_features(config, sentiment, NEGATIVE_THRESHOLD)
    engine = FeatureEngine(config, features, load_segments(segments_file))
    return FeaturesProcessor(engine, limits, clock_topics)
