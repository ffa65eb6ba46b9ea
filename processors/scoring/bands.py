"""Bands: low / medium / high by two cut-offs per model (documented in ``scoring.toml``)."""

from __future__ import annotations

from typing import Literal

Band = Literal["low", "medium", "high"]


def band(probability: float, medium: float, high: float) -> Band:
    """``low`` below ``medium``, ``medium`` below ``high``, else ``high``."""
    if probability < medium:
        return "low"
    if probability < high:
        return "medium"
    return "high"
