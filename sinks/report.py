"""The analysts' report: the main KPIs as tables, and the same as charts (PNG files and one HTML page).

Every number comes from the reporting views of ``schema.sql`` (see sinks/README.md), read
through :mod:`sinks.access`, so the report works while the pipeline runs and after it stops.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sinks.access import Reader
from sinks.identity_report import identified_events_sql, identified_revenue_sql, merges_per_day_sql
from sinks.reliability import MIN_CLASS_LABELS, TRUSTED_SQL, WARNING_SQL, Z95

FUNNEL_STEPS = ("view", "product_view", "cart", "checkout", "order")
COHORT_WEEKS = 12


@dataclass
class Section:
    """One table of the report, and how to chart it (``chart``: line, bar, barh, heatmap, reliability or none)."""

    key: str
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    chart: str = "none"
    x: str = ""
    ys: list[str] = field(default_factory=list)
    note: str = ""
    #: A column of standard errors of ``ys[0]``: a bar chart draws their 95% interval on each bar.
    errors: str = ""


@dataclass
class Report:
    generated_at: datetime
    source: str
    sections: list[Section]

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for ``--json`` and tests): section key -> list of row dicts."""
        return {s.key: [dict(zip(s.columns, row, strict=True)) for row in s.rows] for s in self.sections}


def _section(reader: Reader, key: str, title: str, sql: str, **chart: Any) -> Section:
    columns, rows = reader.rows(sql)
    return Section(key, title, columns, rows, **chart)


#: Label horizons (seconds) of the shipped scoring settings; ``journey report`` passes the configured ones.
HORIZONS_S = {"purchase_propensity": 24 * 3600, "churn": 90 * 86400}


def reliability_sql(horizons_s: dict[str, int]) -> str:
    """Reliability of each customer's latest warm score whose horizon has ended by the newest order stored:
    10 equal-width bins of the probability, how many, mean predicted and the rate observed from the orders
    (propensity: an order within the horizon after the score; churn: none)."""
    horizon = f"multiIf(model = 'churn', {int(horizons_s['churn'])}, {int(horizons_s['purchase_propensity'])})"
    return f"""
        WITH (SELECT max(event_time) FROM order_events WHERE type = 'order_placed') AS newest
        SELECT model, bin, count() AS n, avg(probability) AS mean_predicted, avg(label) AS observed
        FROM (
            SELECT s.model AS model, s.customer_id, any(s.probability) AS probability,
                   least(toUInt8(floor(any(s.probability) * 10)), 9) AS bin,
                   countIf(o.event_time > s.scored_at AND o.event_time <= s.scored_at + toIntervalSecond(s.h))
                       AS orders_after,
                   toFloat64(if(s.model = 'churn', orders_after = 0, orders_after > 0)) AS label
            FROM (SELECT customer_id, model, scored_at, probability, {horizon} AS h
                  FROM scores FINAL WHERE NOT cold_start
                  AND scored_at + toIntervalSecond(h) <= newest) AS s
            LEFT JOIN (SELECT customer_id, event_time FROM order_events WHERE type = 'order_placed') AS o
                ON o.customer_id = s.customer_id
            GROUP BY s.model, s.customer_id, s.scored_at, s.h)
        GROUP BY model, bin ORDER BY model, bin"""


def build_report(reader: Reader, days: int | None = None, horizons_s: dict[str, int] | None = None) -> Report:
    """Query the views and assemble the report (``days``: only the last N days of event time; ``horizons_s``:
    each model's label horizon in seconds, for the reliability chart)."""
    since = "toDate('1970-01-01')" if days is None else (
        f"(SELECT max(toDate(minute)) FROM events_per_minute) - {int(days) - 1}")
    day_filter = f"toDate(minute) >= {since}"
    sections = [
        _section(reader, "totals", "Totals", f"""
            SELECT
                (SELECT sum(events) FROM events_per_minute WHERE {day_filter}) AS events,
                (SELECT uniqExactMerge(visitors) FROM activity_per_minute_state WHERE {day_filter}) AS visitors,
                (SELECT uniqExactMerge(buyers) FROM activity_per_minute_state WHERE {day_filter}) AS buyers,
                (SELECT sum(orders_placed) FROM orders_per_minute WHERE {day_filter}) AS orders,
                if(visitors > 0, buyers / visitors, NULL) AS conversion,
                (SELECT sum(dead_letters) FROM dead_letters_per_minute WHERE {day_filter}) AS dead_letters"""),
        _section(reader, "daily", "KPIs per day", f"""
            SELECT day, visitors, sessions, buyers, orders, if(visitors > 0, buyers / visitors, NULL) AS conversion
            FROM (SELECT toDate(minute) AS day, uniqExactMerge(visitors) AS visitors,
                         uniqExactMerge(sessions) AS sessions, uniqExactMerge(buyers) AS buyers
                  FROM activity_per_minute_state WHERE {day_filter} GROUP BY day) AS a
            LEFT JOIN (SELECT toDate(minute) AS day, sum(orders_placed) AS orders
                       FROM orders_per_minute WHERE {day_filter} GROUP BY day) AS o USING day
            ORDER BY day""", chart="line", x="day", ys=["visitors", "buyers", "orders"]),
        _section(reader, "revenue", "Revenue per day and currency", f"""
            SELECT toDate(minute) AS day, currency, sum(orders_placed) AS orders, sum(orders_per_minute.revenue)
                   AS revenue, revenue / nullIf(sum(orders_priced), 0) AS average_order_value
            FROM orders_per_minute WHERE {day_filter} GROUP BY day, currency HAVING orders > 0
            ORDER BY day, currency""",
                 chart="line", x="day", ys=["revenue"]),
        _section(reader, "funnel", "Funnel (distinct customers per step)", f"""
            SELECT step, uniqExactMerge(customers) AS customers, sum(funnel_daily_state.events) AS events
            FROM funnel_daily_state WHERE day >= {since} GROUP BY step
            ORDER BY indexOf({list(FUNNEL_STEPS)}, step)""", chart="bar", x="step", ys=["customers"]),
        _section(reader, "funnel_by_channel", "Funnel per channel (distinct customers)", f"""
            SELECT channel, uniqExactMergeIf(customers, step = 'view') AS viewers,
                   uniqExactMergeIf(customers, step = 'product_view') AS product_viewers,
                   uniqExactMergeIf(customers, step = 'cart') AS carters,
                   uniqExactMergeIf(customers, step = 'checkout') AS checkouts,
                   uniqExactMergeIf(customers, step = 'order') AS buyers
            FROM funnel_daily_state WHERE day >= {since} GROUP BY channel ORDER BY viewers DESC"""),
        _section(reader, "cohorts", "Cohort retention (share of each first-order week ordering N weeks later)", f"""
            SELECT cohort_week, cohort_size, weeks_since, customers, retention FROM cohort_retention
            WHERE weeks_since < {COHORT_WEEKS} ORDER BY cohort_week, weeks_since""",
                 chart="heatmap", x="weeks_since", ys=["retention"]),
        _section(reader, "categories", "Top categories by revenue", f"""
            SELECT category_id, currency, sum(revenue_by_category_daily.units) AS units,
                   sum(revenue_by_category_daily.revenue) AS revenue
            FROM revenue_by_category_daily WHERE day >= {since}
            GROUP BY category_id, currency ORDER BY revenue DESC LIMIT 15""", chart="barh", x="category_id",
                 ys=["revenue"]),
        _section(reader, "acquisition", "Customer value by acquisition channel", """
            SELECT acquisition_channel, currency, customers, buyers, orders, revenue, revenue_per_customer
            FROM value_by_acquisition_channel ORDER BY revenue DESC""", chart="barh", x="acquisition_channel",
                 ys=["revenue_per_customer"], note="all time: acquisition is a customer's first touch"),
        _section(reader, "sentiment", "Customer chat sentiment per day", f"""
            SELECT day, sum(sentiment_daily.messages) AS messages, sum(sentiment_sum) / messages AS average_sentiment,
                   sum(sentiment_daily.negative) AS negative, sum(sentiment_daily.positive) AS positive
            FROM sentiment_daily WHERE day >= {since} GROUP BY day ORDER BY day""", chart="line", x="day",
                 ys=["average_sentiment"]),
        _section(reader, "score_bands", "Customers per score band (latest score of each customer)", """
            SELECT model, band, customers, share, average_probability FROM score_bands""",
                 chart="barh", x="model", ys=["customers"],
                 note="all time: each customer's latest score; cold_start: scored before the model learned "
                      "min_labels labels (a placeholder probability, in no band)"),
        _section(reader, "score_segments", "Score bands per segment", """
            SELECT model, segment, band, customers, share, average_probability FROM score_bands_by_segment"""),
        _section(reader, "model_metrics", "Model metrics (prequential, latest)", f"""
            SELECT model, model_version, labels, positives, roc_auc, log_loss, brier, as_of, {WARNING_SQL}
            FROM model_metrics FINAL ORDER BY model, labels DESC LIMIT 1 BY model"""),
        _section(reader, "roc_auc", "ROC AUC as labels accumulate", f"""
            SELECT labels, model, roc_auc, positives FROM model_metrics FINAL
            WHERE roc_auc IS NOT NULL AND {TRUSTED_SQL} ORDER BY model, labels""", chart="line", x="labels",
                 ys=["roc_auc"], note=f"from {MIN_CLASS_LABELS} positive and {MIN_CLASS_LABELS} negative labels on: "
                                      "fewer make a ROC AUC mostly noise"),
        _section(reader, "reliability", "Reliability: mean predicted vs observed (latest scores whose horizon ended)",
                 reliability_sql(horizons_s or HORIZONS_S), chart="reliability", x="mean_predicted",
                 ys=["observed"], note="each customer's latest warm score, labelled from the orders stored: "
                                       "propensity, an order within its horizon; churn, none. Calibrated "
                                       "probabilities lie on the diagonal"),
        _section(reader, "triggers", "Triggers per type: conversion in the attribution window, uplift vs holdout", """
            SELECT trigger, triggered, messaged, held_out, suppressed, treated_conversion, held_out_conversion,
                   uplift, uplift_standard_error
            FROM trigger_conversion""", chart="barh", x="trigger", ys=["uplift"], errors="uplift_standard_error",
                 note="all time; uplift: conversion of the triggers not held out minus the held-out's, with its "
                      f"standard error; the chart's whiskers are the 95% interval (±{Z95} standard errors); an "
                      "interval across 0 is no evidence of uplift (see sinks/README.md)"),
        _section(reader, "dead_letters", "Dead letters by reason", f"""
            SELECT reason, source_topic, sum(dead_letters_per_minute.dead_letters) AS dead_letters
            FROM dead_letters_per_minute
            WHERE {day_filter} GROUP BY reason, source_topic ORDER BY dead_letters DESC""", chart="barh",
                 x="reason", ys=["dead_letters"]),
        *identity_sections(reader, f"toDate(event_time) >= {since}"),
    ]
    return Report(datetime.now(UTC), reader.where, sections)


def identity_sections(reader: Reader, where: str) -> list[Section]:
    """The identified share of events and revenue, and merges per day (definitions: sinks/identity_report.py)."""
    note = ("known: named a customer on arrival; identified: arrived anonymous, its anonymous id since linked to a "
            "customer; anonymous: not linked yet")
    return [
        _section(reader, "identified_events", "Events by identity", identified_events_sql(where), chart="barh",
                 x="identity", ys=["events"], note=note),
        _section(reader, "identified_revenue", "Revenue by identity (placed orders)", identified_revenue_sql(where),
                 note=note + "; share: of the currency's revenue"),
        _section(reader, "identity_merges", "Identity links and merges per day", merges_per_day_sql(where),
                 chart="line", x="day", ys=["merges", "links"]),
    ]


def format_value(value: Any) -> str:
    """A cell as text: thousands separators, 4 significant decimals for ratios, ISO dates."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def print_report(report: Report, console: Any, max_rows: int = 20) -> None:
    """The report as rich tables (long sections show their last ``max_rows`` rows)."""
    from rich.table import Table
    from rich.text import Text

    from plumbing.terminal import cell, header, markup_safe

    console.print(f"[bold]journey report[/] from {markup_safe(report.source)}, "
                  f"{report.generated_at:%Y-%m-%d %H:%M} UTC")
    for section in report.sections:
        first = section.key == "cohorts"  # the oldest cohorts have the longest history
        rows = section.rows[:max_rows] if first else section.rows[-max_rows:]
        shown = f" ({'first' if first else 'last'} {max_rows} of {len(section.rows)} rows)"
        title = section.title + (shown if len(section.rows) > max_rows else "")
        table = Table(*map(header, section.columns), title=Text(title), title_justify="left",
                      caption=Text(section.note) if section.note else None)
        for row in rows:  # values from the data: shown as text, never read as markup or control sequences
            table.add_row(*(cell(format_value(v)) for v in row))
        if not section.rows:
            table.add_row(*("-" for _ in section.columns))
        console.print(table)


def _label(value: Any) -> str:
    """A chart label from data: control characters escaped, ``$`` kept literal (matplotlib reads ``$...$`` as
    TeX, and bad TeX fails the whole chart)."""
    from plumbing.terminal import text_of

    return text_of(value).replace("$", r"\$")


def _figure(section: Section) -> Any | None:
    """The matplotlib figure of a section, or None when it has no chart or no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if section.chart == "none" or not section.rows:
        return None
    col = {name: i for i, name in enumerate(section.columns)}
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    if section.chart == "line":
        series: dict[str, list[tuple[Any, float]]] = {}
        for row in section.rows:
            label_suffix = "".join(f" {_label(row[col[c]])}" for c in ("currency", "model")
                                   if c in col and c != section.x)
            for y in section.ys:
                series.setdefault(y + label_suffix, []).append((row[col[section.x]], row[col[y]] or 0.0))
        for label, points in series.items():
            marker = "." if len(points) < 60 else None
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label, marker=marker)
        ax.legend(loc="best")
        fig.autofmt_xdate()
    elif section.chart in ("bar", "barh"):
        labels = [" ".join(_label(row[col[c]]) for c in (section.x, "band", "currency") if c in col)
                  for row in section.rows]
        values = [row[col[section.ys[0]]] or 0 for row in section.rows]
        errors = [Z95 * (row[col[section.errors]] or 0) for row in section.rows] if section.errors else None
        axis = section.ys[0] + (f" (whiskers: 95% interval, ±{Z95} standard errors)" if errors else "")
        if section.chart == "bar":
            ax.bar(labels, values, yerr=errors, color="#3b6ea5", capsize=4)
        else:
            ax.barh(labels[::-1], values[::-1], xerr=errors[::-1] if errors else None, color="#3b6ea5", capsize=4)
        if errors:
            ax.axvline(0, color="#888", linewidth=0.8)
        ax.set_xlabel(axis) if section.chart == "barh" else ax.set_ylabel(axis)
    elif section.chart == "reliability":
        for model in sorted({row[col["model"]] for row in section.rows}):
            points = [(row[col["mean_predicted"]], row[col["observed"]], row[col["n"]])
                      for row in section.rows if row[col["model"]] == model]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=_label(model))
        ax.plot([0, 1], [0, 1], color="#888", linestyle="--", linewidth=0.8, label="calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability (10 bins)")
        ax.set_ylabel("observed rate")
        ax.legend(loc="best")
    elif section.chart == "heatmap":
        cohorts = sorted({row[col["cohort_week"]] for row in section.rows})
        grid = [[float("nan")] * COHORT_WEEKS for _ in cohorts]
        for row in section.rows:
            grid[cohorts.index(row[col["cohort_week"]])][row[col["weeks_since"]]] = row[col["retention"]]
        image = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=1)
        ax.set_yticks(range(len(cohorts)), [str(c) for c in cohorts])
        ax.set_xlabel("weeks since the first order")
        fig.colorbar(image, ax=ax, label="retention")
    ax.set_title(section.title)
    fig.tight_layout()
    return fig


def write_charts(report: Report, out_dir: Path) -> tuple[list[Path], Path]:
    """One PNG per charted section, and ``report.html`` with every table and chart inline (self-contained)."""
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    parts = [f"<h1>journey report</h1><p>From {html.escape(report.source)}, generated "
             f"{report.generated_at:%Y-%m-%d %H:%M} UTC.</p>"]
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        fig = _figure(section)
        if fig is not None:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
            plt.close(fig)
            path = out_dir / f"{section.key}.png"
            path.write_bytes(buffer.getvalue())
            pngs.append(path)
            parts.append(f'<img alt="{html.escape(section.title)}" '
                         f'src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">')
        parts.append(_html_table(section.columns, section.rows))
        if section.note:
            parts.append(f"<p class=note>{html.escape(section.note)}</p>")
    page = out_dir / "report.html"
    page.write_text("<!doctype html><html><head><meta charset=utf-8><title>journey report</title><style>"
                    "body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;"
                    "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
                    "th{background:#eef}img{max-width:100%}.note{color:#666}</style></head><body>"
                    + "\n".join(parts) + "</body></html>")
    return pngs, page


def _html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
