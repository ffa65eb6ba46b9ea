"""``journey evaluate`` and ``journey models``: the evaluation table of a replay, and the published metrics.

``evaluate`` replays a source in-process (features -> scoring -> trainer, no broker; see
``processors/scoring/replay.py``) with a progress bar, then prints per model the
prequential ROC AUC of the online model, of the recency heuristic and of two tuned offline
batch models (gradient boosting, logistic regression) on the same test period, with label counts
and bootstrap intervals of the differences. On the generator's
traffic it also scores the online churn probabilities against the generator's latent
churn (has the customer churned by the prediction time?), the truth no shop can see.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from plumbing.terminal import markup_safe
from processors.scoring.bootstrap import Interval
from processors.scoring.config import ScoringConfig, load_scoring
from processors.scoring.evaluate import TARGET_GAP, ModelEvaluation, evaluate
from processors.scoring.replay import Sample, replay
from sinks.access import Reader
from streams.query_format import print_result
from streams.settings import Settings


def scoring_config(settings: Settings, horizon_hours: int | None = None, churn_days: int | None = None,
                   rescore_hours: int | None = None) -> ScoringConfig:
    """The configured scoring parameters, with the command line's horizons and re-scoring period when given."""
    config = load_scoring(settings.scoring_file)
    if rescore_hours is not None:
        config = dataclasses.replace(config, rescore=dataclasses.replace(config.rescore, every_hours=rescore_hours))
    if horizon_hours is not None:
        config = dataclasses.replace(config, purchase_propensity=dataclasses.replace(
            config.purchase_propensity, horizon_hours=horizon_hours))
    if churn_days is not None:
        config = dataclasses.replace(config, churn=dataclasses.replace(config.churn, horizon_days=churn_days))
    return config


def latent_churn_auc(samples: list[Sample], truth: Any) -> tuple[float | None, int, int]:
    """ROC AUC of churn probabilities against the generator's latent churn at prediction time."""
    from datetime import UTC, datetime

    from sklearn.metrics import roc_auc_score

    churn = [s for s in samples if s.model == "churn"]
    y = [truth.churned(s.customer_id, datetime.fromtimestamp(s.predicted_at_ms / 1000, UTC)) for s in churn]
    if not y or all(y) or not any(y):
        return None, len(y), sum(y)
    return float(roc_auc_score(y, [s.probability for s in churn])), len(y), sum(y)


def run_evaluation(settings: Settings, console: Console, source: str | None, mapping: str | None, tz: str,
                   customers: int, days: int, seed: int, split: float, horizon_hours: int | None,
                   churn_days: int | None, as_json: bool, options: Any = None,
                   rescore_hours: int | None = None) -> list[ModelEvaluation]:
    """Replay, evaluate, print; return the rows. ``options``: the ReadOptions of a csv/jsonl replay."""
    from schemas.registry import DEAD_LETTERS
    from streams.sources import open_source
    from streams.sources.generator import Generator

    config = scoring_config(settings, horizon_hours, churn_days, rescore_hours)
    truth = None
    if source is None:
        generator = Generator(customers, days, seed)
        records = generator.records()
        truth = generator.truth
        name = f"generator ({customers:,} customers, {days} days, seed {seed})"
    else:
        records, stats = open_source(source, mapping=mapping, tz=tz, options=options)
        records = [r for r in records if r.topic != DEAD_LETTERS]  # rows the replay dead-lettered: no events
        name = source
        console.print(f"{source}: {stats.describe()}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"replaying {name}", total=len(records))
        result = replay(records, config, round(settings.session_gap_seconds * 1000),
                        progress=lambda n: bar.update(task, completed=n), keep_scores=False, explain=False)
        bar.update(task, description="training the offline models", completed=len(records))
        rows = evaluate(result.samples, config, split)
    latent = latent_churn_auc(result.samples, truth) if truth is not None else None
    if as_json:
        out: dict[str, Any] = {"source": name, "events": result.events, "scores": result.scored,
                               "models": [r.as_dict() for r in rows], "drift_events": len(result.drift)}
        if latent is not None:
            out["latent_churn"] = {"roc_auc": latent[0], "labels": latent[1], "churned": latent[2]}
        print(orjson.dumps(out).decode())
        return rows
    out = Console(width=None if Console().is_terminal else 250)  # piped: wide enough for a row per model
    print_evaluation(out, name, rows, config, result.scored, len(result.drift), latent)
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _diff(interval: Interval | None) -> str:
    return "-" if interval is None else f"{interval.estimate:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]"


def _print_table(out: Console, title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A title, then one row per model as ``journey query`` prints a result (streams/query_format.py): a table
    where its cells fit uncut, else one ``field: value`` line each (a cut ``0.…`` hides the number)."""
    out.print(markup_safe(title), highlight=False)
    print_result(out, list(header), rows)


def print_evaluation(out: Console, name: str, rows: list[ModelEvaluation], config: ScoringConfig, scores: int,
                     drift: int, latent: tuple[float | None, int, int] | None) -> None:
    header = ("model", "horizon", "labels (pos)", "online, all", "train / test (pos)", "online", "recency",
              "offline GBM", "offline logistic", "online - recency", "online - best offline", "target")
    rows_out = []
    for r in rows:
        horizon = (f"{config.purchase_propensity.horizon_hours} h" if r.model == "purchase_propensity"
                   else f"{config.churn.horizon_days} d")
        target = {None: "-", True: "met", False: "not met"}[r.target_met]
        rows_out.append((r.model, horizon, f"{r.labels:,} ({r.positives:,})", _fmt(r.online_all),
                         f"{r.train:,} / {r.test:,} ({r.test_positives:,})", _fmt(r.online), _fmt(r.recency),
                         _fmt(r.offline_gbm), _fmt(r.offline_logistic), _diff(r.online_minus_recency),
                         _diff(r.online_minus_offline), target))
    _print_table(out, f"Prequential ROC AUC, {name}", header, rows_out)
    for r in rows:
        if r.split_at:
            out.print(f"{r.model}: time split T = {r.split_at}; offline training: horizons ended by T; test period "
                      f"{r.test_from} .. {r.test_to}")
    print_baselines(out, rows)
    for r in rows:
        if r.gbm_settings:
            out.print(f"{r.model}: GBM {r.gbm_settings}; logistic {r.logistic_settings} (chosen on validation)")
        if r.note:
            out.print(f"{r.model}: {r.note}")
    if latent is not None:
        out.print(f"online churn vs the generator's latent churn at prediction time: ROC AUC {_fmt(latent[0])} "
                  f"over {latent[1]:,} predictions ({latent[2]:,} already churned)")
    out.print(f"{scores:,} scores, {drift} drift events. online and recency: test period; offline: trained on the "
              "predictions whose horizon ended before it, tuned on a later validation period inside it. "
              f"Differences: 95 % customer-bootstrap intervals. target: beats recency and within {TARGET_GAP} of "
              "the best offline model.")


def _auc_ci(interval: Interval | None) -> str:
    return "-" if interval is None else f"{interval.estimate:.4f} [{interval.low:.4f}, {interval.high:.4f}]"


def print_baselines(out: Console, rows: list[ModelEvaluation]) -> None:
    """Each scorer's test-period ROC AUC with its interval, and the served probability's calibration."""
    names = ("online", "recency", "frequency", "rfm_logistic", "offline_gbm", "offline_logistic")
    _print_table(out, "Test-period ROC AUC [95 % customer-bootstrap interval]", ("model", *names),
                 [(r.model, *(_auc_ci(r.intervals.get(n)) for n in names)) for r in rows])
    for r in rows:
        c = r.calibration
        if c is None:
            continue
        out.print(f"{r.model}: n {c.n:,}, observed rate {c.base_rate:.4f}, mean predicted {c.mean_predicted:.4f}; "
                  f"Brier {c.brier:.4f} (base rate {c.brier_base_rate:.4f}), log loss {c.log_loss:.4f} "
                  f"(base rate {c.log_loss_base_rate:.4f}); top decile predicted {c.top_decile_predicted:.4f}, "
                  f"observed {c.top_decile_observed:.4f}")
        bins = Table("bin", "n", "mean predicted", "observed", title=f"{r.model}: reliability", title_justify="left")
        for b in c.bins:
            if b["n"]:
                bins.add_row(f"{b['lo']:.1f}-{b['hi']:.1f}", f"{b['n']:,}", _fmt(b["mean_predicted"]),
                             _fmt(b["observed"]))
        out.print(bins)


def latest_model_metrics(reader: Reader) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The newest ``model_metrics`` row per model, and the last ten ``model_drift`` rows."""
    from sinks.reliability import WARNING_SQL

    columns, rows = reader.rows(f"SELECT model, model_version, labels, positives, roc_auc, log_loss, brier, as_of, "
                                f"{WARNING_SQL} FROM model_metrics ORDER BY model, labels DESC LIMIT 1 BY model")
    metrics = [dict(zip(columns, row, strict=True)) for row in rows]
    columns, rows = reader.rows("SELECT model, model_version, labels, detected_at, error_before, error_after "
                                "FROM model_drift FINAL ORDER BY detected_at DESC LIMIT 10")
    return metrics, [dict(zip(columns, row, strict=True)) for row in rows]


def print_model_metrics(out: Console, metrics: list[dict[str, Any]], drift: list[dict[str, Any]]) -> None:
    if not metrics:
        out.print("no model metrics yet (the trainer publishes them every metrics_every_labels labels)")
        return
    # As `journey query` prints: a table when it fits the terminal, else one `column: value` line per cell,
    # never cells cut to `purcha…` (80 columns, and any pipe, cannot hold the eight columns whole).
    out.print("Latest prequential metrics", highlight=False)
    print_result(out, ["model", "version", "labels", "positives", "ROC AUC", "log loss", "Brier", "as of"],
                 [[m["model"], str(m["model_version"]), f"{m['labels']:,}", f"{m['positives']:,}", _fmt(m["roc_auc"]),
                   _fmt(m["log_loss"]), _fmt(m["brier"]), str(m["as_of"])] for m in metrics])
    for m in metrics:
        if m.get("warning"):
            out.print(f"[yellow]warning: {markup_safe(m['model'])}: {markup_safe(m['warning'])}[/]")
    if drift:
        out.print("Recent drift", highlight=False)
        print_result(out, ["model", "version", "labels", "detected at", "error before", "error after"],
                     [[d["model"], str(d["model_version"]), f"{d['labels']:,}", str(d["detected_at"]),
                       _fmt(d["error_before"]), _fmt(d["error_after"])] for d in drift])
