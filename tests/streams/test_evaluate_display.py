"""`journey evaluate`'s tables show every number whole at any width: a row per model where the cells fit,
one field-per-line table per model where they do not. (At 150 columns the propensity model read
`purchase_p…` and the README example's check found no ROC AUC on its row; at 80 every number read `0.…`.)"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from processors.scoring.config import load_scoring
from processors.scoring.evaluate import evaluate
from processors.scoring.replay import replay
from streams.evaluate import _auc_ci, _diff, _fmt, print_evaluation
from streams.sources.generator import Generator


@pytest.mark.parametrize("width", [80, 120, 250])
def test_every_number_is_shown_whole(width: int) -> None:
    config = load_scoring()
    result = replay(Generator(200, 30, 3).records(), config, keep_scores=False, explain=False)
    rows = evaluate(result.samples, config)
    console = Console(width=width, record=True, file=io.StringIO())
    print_evaluation(console, "generator", rows, config, result.scored, len(result.drift), None)
    text = console.export_text()
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= width
    shown = [_fmt(r.online) for r in rows] + [_diff(r.online_minus_recency) for r in rows] + [
        _auc_ci(i) for r in rows for i in r.intervals.values()]
    assert [value for value in shown if value not in text] == []
    assert any(value != "-" for value in shown)
    if width == 250:  # the width of piped output: one row per model, its ROC AUC on it (the README example's check)
        line = next(ln for ln in text.splitlines() if re.match(r"\W*purchase_propensity\W", ln))
        assert re.search(r"\b0\.\d{4}\b", line)
