"""The drift watch reports a step change in a model's error, and nothing while the error is stationary."""

from __future__ import annotations

import random
from typing import Any

import pytest

from processors.scoring.drift import DriftWatch

#: The probability the model serves throughout.
SERVED = 0.1


def step_labels(step_at: int | None, n: int = 1200) -> list[bool]:
    """Labels positive at 10 %, then (from ``step_at``) at 50 %."""
    rng = random.Random(5)
    return [rng.random() < (0.5 if step_at is not None and i >= step_at else 0.1) for i in range(n)]


def served_errors(step_at: int | None) -> list[float]:
    """|label - probability| of a model that serves ``SERVED`` whatever happens."""
    return [abs((1.0 if label else 0.0) - SERVED) for label in step_labels(step_at)]


def watch(errors: list[float], grace: int = 200) -> list[tuple[int, dict[str, Any]]]:
    detector = DriftWatch(delta=0.002, grace_labels=grace)
    return [(i, d) for i, e in enumerate(errors) if (d := detector.update(e)) is not None]


def test_a_step_in_the_error_is_one_drift_record_with_the_error_before_and_after() -> None:
    [(at, drift)] = watch(served_errors(step_at=600))
    assert at == 671  # 72 labels after the step
    assert drift["error_before"] == pytest.approx(0.2299552906110275, abs=1e-12)
    assert drift["error_after"] == pytest.approx(0.2840909090909076, abs=1e-12)
    assert drift["error_after"] > drift["error_before"]  # the model got worse
    assert (drift["window"], drift["detections"]) == (352, 1)


def test_stationary_errors_and_a_step_inside_the_grace_period_give_no_record() -> None:
    assert watch(served_errors(step_at=None)) == []
    assert watch(served_errors(step_at=600), grace=2000) == []
