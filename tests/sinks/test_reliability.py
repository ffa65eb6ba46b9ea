"""Numbers an analyst could misread (issue 19, item 7): cold-start scores in a band of their own, uplift with its
error wherever it is shown, model metrics from too few labels of a class with a warning. Real chDB and views."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sinks.access import Reader
from sinks.client import connect
from sinks.dashboard import summary
from sinks.report import _figure, build_report
from streams.evaluate import latest_model_metrics, print_model_metrics
from tests.conftest import reset_clickhouse

COLD, WARM_HIGH, WARM_MEDIUM = 264, 7, 11


@pytest.fixture
def reader(chdb_path: Path) -> Iterator[Reader]:
    client = connect(f"chdb://{chdb_path}")
    reset_clickhouse(client)
    # 264 cold-start scores at the model's placeholder 0.5: the high band's cut is 0.5 too (what the issue saw).
    score = ("INSERT INTO scores SELECT concat('s', toString(number)), concat('c', toString(number)), "
             "'purchase_propensity', 1, toDateTime64('2024-01-02 00:00:00', 3, 'UTC'), {p}, '{band}', {cold}, "
             "map(), now64(3) FROM numbers({start}, {n})")
    client.command(score.format(p=0.5, band="high", cold="true", start=0, n=COLD))
    client.command(score.format(p=0.7, band="high", cold="false", start=COLD, n=WARM_HIGH))
    client.command(score.format(p=0.3, band="medium", cold="false", start=COLD + WARM_HIGH, n=WARM_MEDIUM))
    # Prequential metrics: purchase learned 4 positives of 3,847 labels; churn has plenty of both classes.
    client.command("INSERT INTO model_metrics VALUES "
                   "('purchase_propensity', 1, 1000, 1, 0.91, 0.05, 0.01, '2024-01-02 00:00:00', now64(3)), "
                   "('purchase_propensity', 1, 3847, 4, 0.88, 0.04, 0.01, '2024-01-03 00:00:00', now64(3)), "
                   "('churn', 1, 2000, 700, 0.71, 0.6, 0.2, '2024-01-02 00:00:00', now64(3)), "
                   "('churn', 1, 3000, 2980, 0.74, 0.6, 0.2, '2024-01-03 00:00:00', now64(3))")
    with Reader("test", client=client) as r:
        yield r


def rows(section: Any) -> list[dict[str, Any]]:
    return [dict(zip(section.columns, row, strict=True)) for row in section.rows]


def test_cold_start_scores_are_in_a_band_of_their_own(reader: Reader) -> None:
    report = build_report(reader)
    bands = {r["band"]: r["customers"] for r in rows(report.section("score_bands"))}
    assert bands == {"cold_start": COLD, "high": WARM_HIGH, "medium": WARM_MEDIUM}
    segments = {r["band"]: r["customers"] for r in rows(report.section("score_segments"))}
    assert segments == bands  # no profiles: every customer is in segment "none"
    board = {r["band"]: r["customers"] for r in summary(reader)["score_bands"]}
    assert board == bands


def test_model_metrics_from_too_few_positives_carry_a_warning(reader: Reader) -> None:
    report = build_report(reader)
    latest = {r["model"]: r for r in rows(report.section("model_metrics"))}
    assert latest["purchase_propensity"]["warning"] == (
        "only 4 positive of 3847 labels: too few to trust these metrics (needs 30)")
    assert latest["churn"]["warning"] == "only 20 negative of 3000 labels: too few to trust these metrics (needs 30)"
    # The ROC AUC chart shows only points computed from enough labels of both classes.
    assert [(r["model"], r["labels"]) for r in rows(report.section("roc_auc"))] == [("churn", 2000)]
    board = {r["model"]: r["warning"] for r in summary(reader)["model_metrics"]}
    assert board["purchase_propensity"].startswith("only 4 positive of 3847 labels")
    out = Console(file=io.StringIO(), width=200, record=True)
    print_model_metrics(out, *latest_model_metrics(reader))
    assert ("warning: purchase_propensity: only 4 positive of 3847 labels: too few to trust these metrics "
            "(needs 30)") in out.export_text()


def test_uplift_is_shown_with_its_standard_error(reader: Reader) -> None:
    report = build_report(reader)
    triggers = report.section("triggers")
    assert "uplift_standard_error" in triggers.columns
    assert summary(reader)["triggers"] == []  # no triggers stored: the columns are checked from the query
    from sinks.dashboard import QUERIES

    assert "uplift_standard_error" in QUERIES["triggers"]
    page = (Path(__file__).parents[2] / "sinks" / "dashboard.html").read_text()
    assert '"uplift", "uplift_standard_error"], "trigger");' in page
    # The chart: each bar carries its 95% interval (1.96 standard errors), from the section's own rows.
    col = {c: i for i, c in enumerate(triggers.columns)}
    row: list[Any] = [None] * len(triggers.columns)
    row[col["trigger"]], row[col["uplift"]], row[col["uplift_standard_error"]] = "cart_abandoned", 0.02, 0.015
    triggers.rows = [tuple(row)]
    fig = _figure(triggers)
    from matplotlib.container import ErrorbarContainer

    (errorbar,) = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    (whisker,) = errorbar.lines[2][0].get_segments()
    assert [round(x, 6) for x in (whisker[0][0], whisker[1][0])] == [round(0.02 - 1.96 * 0.015, 6),
                                                                    round(0.02 + 1.96 * 0.015, 6)]
    assert "95% interval" in fig.axes[0].get_xlabel()
