"""`journey models` at 80 columns (a common terminal, and any pipe): every value printed whole, never `purcha…`."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from streams.evaluate import print_model_metrics

METRICS = [
    {"model": "purchase_propensity", "model_version": "7000", "labels": 7000, "positives": 318, "roc_auc": 0.43261,
     "log_loss": 0.40684, "brier": 0.12931, "as_of": datetime(2024, 1, 30, 22, 46, 1, 123000, tzinfo=UTC),
     "warning": None},
    {"model": "churn", "model_version": "12", "labels": 12, "positives": 3, "roc_auc": None, "log_loss": 1.5,
     "brier": 0.25, "as_of": datetime(2024, 1, 30, 22, 46, tzinfo=UTC), "warning": None},
]
DRIFT = [{"model": "purchase_propensity", "model_version": "6207", "labels": 6208,
          "detected_at": datetime(2024, 1, 25, 11, 32, 43, 610000, tzinfo=UTC), "error_before": 0.0822,
          "error_after": 0.0769}]


def test_every_value_is_whole_at_80_columns() -> None:
    out = Console(file=io.StringIO(), width=80, record=True)
    print_model_metrics(out, METRICS, DRIFT)
    text = out.export_text()
    assert "…" not in text, text
    for value in ("purchase_propensity", "version: 7000", "7,000", "318", "0.4326", "0.4068", "0.1293",
                  "2024-01-30 22:46:01", "churn", "1.5000", "0.0822", "0.0769", "2024-01-25 11:32:43", "6,208"):
        assert value in text, f"{value} is not shown whole:\n{text}"
    assert max(len(line) for line in text.splitlines()) <= 80
