"""The ``journey`` command line: run the pipeline, its workers, sources, queries and contracts."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from plumbing.terminal import cell, json_line, markup_safe
from streams.cli_dead_letters import app as dead_letters_app
from streams.kafka_options import WorkerRole
from streams.settings import (
    Settings,
    SettingsFileInvalid,
    SettingsFileMissing,
    load_settings,
    settings_file_in_use,
    unknown_environment,
)

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Real-time customer-journey pipeline: Kafka streams in, ClickHouse out.")
schemas_app = typer.Typer(no_args_is_help=True, help="Event contracts (JSON Schema).")
app.add_typer(schemas_app, name="schemas")
privacy_app = typer.Typer(no_args_is_help=True, help="Data rights: erase or export a customer (README: Privacy).")
app.add_typer(privacy_app, name="privacy")
app.add_typer(dead_letters_app, name="dead-letters")
#: Messages for the user; never hard-wrapped, so a long path or error stays one line (and greppable) in logs.
#: Written to a file or a pipe (a CI log), it is laid out 120 columns wide: rich's default of 80
#: would cut the progress lines' counts short.
console = Console(stderr=True, soft_wrap=True, width=None if Console(stderr=True).is_terminal else 120)

ReplayOption = Annotated[str | None, typer.Option(
    "--replay", help="KIND:PATH: taobao:FILE, olist:DIR, twcs:FILE, csv:FILE, jsonl:FILE. Default: generator.")]
MapOption = Annotated[str | None, typer.Option(
    "--map", help="For csv/jsonl: field=Column,... ; a value starting with ':' is a constant "
                  "(e.g. customer_id=CustomerID,event_time=InvoiceDate,amount=Price,type=:order_placed).")]
TzOption = Annotated[str, typer.Option("--tz", help="Time zone of naive timestamps in csv/jsonl.")]


def _positive(value: float | None) -> float | None:
    """Checked while the options are parsed, before any broker or worker starts."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be above 0 (it multiplies event time), not {value:g}; leave it out to "
                                 "feed as fast as possible")
    return value


SpeedOption = Annotated[float | None, typer.Option(
    "--speedup", callback=_positive,
    help="Replay at this multiple of event time, above 0 (default: as fast as possible).")]
MaxGapOption = Annotated[float | None, typer.Option(
    "--max-gap", help="With --speedup: wait at most this many seconds between two records (idle stretches of "
                      "event time are compressed).")]
CheckOption = Annotated[bool, typer.Option(
    "--check", help="Dry run: read the whole source, print each time column's format, the time range and the rows "
                    "that will be dead letters (by reason, with examples); start nothing.")]
DelimiterOption = Annotated[str | None, typer.Option(
    "--delimiter", help="CSV delimiter, one character or 'tab' (default: sniffed from the first rows among "
                        ", ; TAB |).")]
DecimalOption = Annotated[str, typer.Option("--decimal", help="Decimal mark of numbers in csv/jsonl: . or ,")]
EncodingOption = Annotated[str | None, typer.Option(
    "--encoding", help="CSV encoding, e.g. latin-1 (default: UTF-8, or UTF-16/32 when the file starts with its BOM).")]
TimeFormatOption = Annotated[str | None, typer.Option(
    "--time-format", help="Format of the event time column, as strftime (e.g. '%d/%m/%Y %H:%M'), iso, unix or "
                          "unix-ms (default: decided from the file's values).")]
CustomersOption = Annotated[int, typer.Option("--customers", min=1, help="Generator: number of customers.")]
DaysOption = Annotated[int, typer.Option("--days", min=1, help="Generator: days of traffic.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Generator: random seed (same seed, same traffic).")]
IdentitiesOption = Annotated[str | None, typer.Option(
    "--identities", help="Generator: identity cases, e.g. anonymous=600,shared-devices=50,two-emails=200 "
                         "(customers whose first visit is anonymous until they log in, devices shared by two "
                         "customers, customers with two e-mails; README: Identity resolution). Default: none.")]


def _settings() -> Settings:
    for name, nearest in unknown_environment():
        console.print(f"[yellow]warning: {name} is not a journey setting and is ignored[/]"
                      + (f" (did you mean {nearest}?)" if nearest else " (README: Configuration lists them)"))
    try:
        return load_settings()
    except ValidationError as exc:
        source = settings_file_in_use()
        where = f"environment JOURNEY_* or {escape(str(source))}" if source else "environment JOURNEY_*"
        console.print(f"[red]invalid configuration[/] ({where}):")
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(map(str, error["loc"])) or "settings"  # checks across settings have no single name
            console.print(f"  {where}: {error['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None
    except (SettingsFileMissing, SettingsFileInvalid) as exc:
        console.print(f"[red]invalid configuration:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _readable_settings(settings: Settings | None = None) -> Settings:
    """The settings of a read-only command, which stops with the fix when there is no pipeline data to read
    (before anything opens, and so creates, an empty embedded database)."""
    from streams.readonly import missing_data

    settings = settings or _settings()
    reason = missing_data(settings)
    if reason is not None:
        console.print(f"[red]nothing to read:[/] {escape(reason)}")
        raise typer.Exit(2)
    return settings


def _read_failed(what: str, settings: Settings, message: str) -> NoReturn:
    """Say why a read failed (naming the database and the fix when a pipeline table is missing) and exit 1."""
    from streams.readonly import missing_schema_hint

    console.print(f"[red]{what}:[/] {markup_safe(message)}")
    hint = missing_schema_hint(settings, message)
    if hint:
        console.print(markup_safe(hint))
    raise typer.Exit(1)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("journey")
        except PackageNotFoundError:
            number = "unknown (not installed: pip install -e .)"
        sys.stdout.write(f"journey {number}\n")
        raise typer.Exit()


@app.callback()
def _main(show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                      help="Print the version and exit.")] = False) -> None:
    """Real-time customer-journey pipeline: Kafka streams in, ClickHouse out."""


def _require_reports_extra(command: str, *modules: str) -> None:
    """The `reports` extra (scikit-learn, matplotlib) is not in the workers' image: say so plainly."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        console.print(f"[red]journey {command} needs {', '.join(missing)}:[/] pip install 'journey\\[reports]' "
                      "(the container image leaves it out; `make run` installs it)")
        raise typer.Exit(2)


def _source(replay: str | None, mapping: str | None, tz: str, speedup: float | None,
            customers: int, days: int, seed: int, reading: dict[str, Any] | None = None,
            max_gap: float | None = None, check: bool = False,
            identities: str | None = None) -> tuple[object, str, int | None]:
    """The paced records of a replay or the generator, their name and count.

    ``reading`` holds the ReadOptions of a csv/jsonl replay (delimiter, decimal, encoding,
    time_format). A replay prints what it read; a warning when most records sampled would be
    dead letters; with ``check`` the dry run's report, then the command ends (status 0).
    """
    from streams.sources import ReadOptions, open_source
    from streams.sources.check import check as check_source
    from streams.sources.check import mostly_dead
    from streams.sources.generator import IdentityMix
    from streams.sources.generator_stream import stream
    from streams.sources.pacing import paced

    problem = ("--check reads a --replay source" if check and replay is None else
               "--speedup must be a positive number" if speedup is not None and not speedup > 0 else
               "--max-gap needs --speedup, and zero or more seconds" if max_gap is not None
               and (speedup is None or not max_gap >= 0) else
               "--identities is for the generator, not a --replay" if identities is not None and replay is not None
               else None)
    mix = None
    if problem is None and identities is not None:
        try:
            mix = IdentityMix.parse(identities)
            mix.check(customers)
        except ValueError as exc:
            problem = f"--identities: {exc}"
    if problem is not None:
        console.print(f"[red]{markup_safe(problem)}[/]")
        raise typer.Exit(2)
    if replay is None:  # streamed: records are made as they are fed, never all held at once
        name = f"generator ({customers:,} customers, {days} days, seed {seed}" + (
            f", identities {identities})" if mix is not None else ")")
        return paced(stream(customers=customers, days=days, seed=seed, identities=mix), speedup,
                     max_gap=max_gap), name, None
    else:
        try:
            pseudonym = _settings().pseudonymizer().pseudonym  # the edge: emails or phones given as ids
            iterator, stats = open_source(replay, mapping=mapping, tz=tz, pseudonym=pseudonym,
                                          options=ReadOptions(**(reading or {})))
        except (ValueError, FileNotFoundError) as exc:
            console.print(f"[red]cannot replay {replay}:[/] {exc}")
            raise typer.Exit(2) from None
        records = list(iterator)
        name = replay
        console.print(f"{replay}: {stats.describe()}")  # skipped rows are counted with their reason
        if check:
            for line in check_source(records, stats, _settings().limits).lines():
                console.print(line, markup=False, highlight=False)
            raise typer.Exit(0)
        for hint in stats.hints.values():
            console.print(f"[yellow]hint:[/] {hint}")
        warning = mostly_dead(records, _settings().limits)
        if warning is not None:
            console.print(f"[yellow]warning:[/] {warning}")
    return paced(records, speedup, max_gap=max_gap), name, len(records)


@app.command()
def run(replay: ReplayOption = None, mapping: MapOption = None, tz: TzOption = "UTC",
        speedup: SpeedOption = None, customers: CustomersOption = 2000, days: DaysOption = 30,
        seed: SeedOption = 7, max_gap: MaxGapOption = None, check: CheckOption = False,
        delimiter: DelimiterOption = None, decimal: DecimalOption = ".", encoding: EncodingOption = None,
        time_format: TimeFormatOption = None, identities: IdentitiesOption = None) -> None:
    """Start the embedded broker and ClickHouse (unless configured), feed a source, print a summary."""
    from streams.run import Interrupted, request_stop, run_pipeline
    from streams.runfile import RunInProgress, claim

    settings = _settings()
    try:
        if not check:  # a dry run starts nothing, so it takes no lock either
            with claim(settings.data_dir):  # said at once, before reading the source; run_pipeline claims for good
                pass
    except RunInProgress as exc:
        console.print(f"[red]not started:[/] {markup_safe(exc)}")
        raise typer.Exit(2) from None
    _logging(settings.data_dir / "logs" / "journey.log", settings)
    reading = {"delimiter": delimiter, "decimal": decimal, "encoding": encoding, "time_format": time_format}
    records, name, total = _source(replay, mapping, tz, speedup, customers, days, seed, reading, max_gap, check,
                                   identities)
    # Stoppable whatever the parent left blocked (a supervisor's or a native library's signal mask is inherited).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    try:
        run_pipeline(settings, records, name, console, total)  # type: ignore[arg-type]
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Interrupted) and stop.signum == signal.SIGTERM
        console.print(f"[yellow]{'terminated' if terminated else 'interrupted'}: workers and broker stopped[/]")
        raise typer.Exit(143 if terminated else 130) from None
    except RunInProgress as exc:  # found before anything started: the running pipeline is untouched
        console.print(f"[red]not started:[/] {markup_safe(exc)}")
        raise typer.Exit(2) from None
    except Exception as exc:
        console.print(f"[red]pipeline failed:[/] {markup_safe(exc)}")
        raise typer.Exit(1) from None


@app.command()
def sink() -> None:
    """Run one ingestion-sink worker (input topics -> ClickHouse) until SIGTERM or Ctrl-C."""
    from sinks.access import QueryServer
    from sinks.client import apply_schema, connect
    from sinks.ingest import IngestSink, SinkConfig
    from sinks.rebuild import SinkRunMarker, rebuild_rollups
    from streams.gc_tuning import tune_for_worker
    from streams.health import worker_health
    from streams.metrics import WorkerMetrics, instrument, instrument_client, sink_collector

    settings = _settings()
    stop = _worker_logging_and_stop(settings, "sink")
    tune_for_worker()
    metrics = WorkerMetrics("sink")
    metrics.stop_event = stop
    client = instrument_client(connect(settings.resolved_clickhouse_dsn, **settings.clickhouse_options()), metrics)
    apply_schema(client, settings.raw_retention_days, settings.attribution_window_hours)
    embedded = settings.resolved_clickhouse_dsn.startswith("chdb://")
    marker = SinkRunMarker(settings.data_dir, settings.group_id("sink"))
    if embedded and marker.previous_run_crashed():  # one sink owns an embedded database: nobody else writes
        logging.getLogger("journey.sink").warning(
            "the last sink did not stop cleanly: rebuilding the rollups from the raw tables (an insert it was "
            "killed in may have reached the raw tables and not their materialized views)")
        rebuild_rollups(client)
    config = SinkConfig(group_id=settings.group_id("sink"), batch_rows=settings.sink_batch_rows,
                        batch_seconds=settings.sink_batch_seconds, min_batch_rows=settings.sink_min_batch_rows,
                        limits=settings.limits,
                        consumer_overrides={**settings.consumer_tuning("sink"), **metrics.consumer_overrides()})
    worker = instrument(IngestSink(settings.kafka_config(), client, config), metrics)
    metrics.registry.register(sink_collector(worker.stats))
    with contextlib.ExitStack() as stack:
        stack.enter_context(worker_health(settings, metrics))
        if embedded:  # this process owns the embedded database
            stack.enter_context(marker)
            stack.enter_context(QueryServer(settings.resolved_clickhouse_dsn, settings.data_dir))
        stats = worker.run(stop)
    logging.getLogger("journey.sink").info("stopped: %s", stats)


@app.command("rebuild-rollups")
def rebuild_rollups_command() -> None:
    """Recompute every rollup from the raw tables (after a sink crash on a ClickHouse server; run it while no
    sink writes). The embedded sink does this by itself when it starts after an unclean stop."""
    from sinks.client import connect
    from sinks.rebuild import rebuild_rollups
    from streams.runfile import in_progress

    settings = _settings()
    if settings.resolved_clickhouse_dsn.startswith("chdb://") and in_progress(settings.data_dir):
        console.print("[red]a pipeline is running on this embedded database:[/] its sink owns it (and rebuilds "
                      "the rollups by itself after a crash); stop it first")
        raise typer.Exit(2)
    client = connect(settings.resolved_clickhouse_dsn, **settings.clickhouse_options())
    counts = rebuild_rollups(client)
    client.close()
    console.print(f"rebuilt {len(counts)} rollup tables: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))


@app.command()
def features() -> None:
    """Run one features worker (resolved inputs -> customer profiles) until SIGTERM or Ctrl-C."""
    from processors.features.build import build_features
    from schemas.identity import PROFILE_HANDOFFS, identified
    from schemas.registry import IDENTITY_MERGES, INPUT_TOPICS
    from streams.metrics import StatsCollector
    from streams.stateful import StatefulWorker

    settings = _settings()
    stop = _worker_logging_and_stop(settings, "features")
    # With identity resolution: the identity stage's resolved events (streams/identity.py) carry event time;
    # its decisions and retired profiles' states are read too.
    resolved = frozenset(identified(topic) for topic in INPUT_TOPICS) if settings.identity_resolution else None
    processor = build_features(lateness_ms=round(settings.allowed_lateness_seconds * 1000),
                               session_gap_ms=round(settings.session_gap_seconds * 1000),
                               segments_file=settings.segments_file, limits=settings.limits, clock_topics=resolved)
    topics = list(INPUT_TOPICS) if resolved is None else [*sorted(resolved), IDENTITY_MERGES, PROFILE_HANDOFFS]
    worker = StatefulWorker(settings.kafka_config(), settings.group_id("features"), topics,
                            settings.changelog("features"), processor, flush_seconds=settings.processor_flush_seconds,
                            pseudonymizer=settings.pseudonymizer(), **settings.stateful_options())
    invalid = StatsCollector({"journey_invalid_input_skipped": (
        "Invalid records skipped (the sink dead-letters them).", "processor",
        lambda: {"features": processor.invalid})})
    stats = _serve(settings, "features", stop, worker, invalid)
    logging.getLogger("journey.features").info("stopped: %s (invalid input skipped: %d)", stats, processor.invalid)


@app.command("identity-stage")
def identity_stage() -> None:
    """Run the identity stage (inputs -> events resolved to their customer, identity-merges) until SIGTERM."""
    from streams.identity import IdentityWorker
    from streams.topics import identity_changelog

    settings = _settings()
    stop = _worker_logging_and_stop(settings, "identity")
    worker = IdentityWorker(settings.kafka_config(), settings.group_id("identity"),
                            identity_changelog(settings.group_prefix), settings.link_rules(), settings.limits,
                            flush_seconds=settings.processor_flush_seconds, pseudonymizer=settings.pseudonymizer())
    _serve(settings, "identity", stop, worker)
    logging.getLogger("journey.identity").info("stopped: %s", worker.stats)


@app.command()
def triggers() -> None:
    """Run one trigger worker (inputs, profiles, scores -> triggers, with timers) until SIGTERM or Ctrl-C."""
    from processors.triggers.config import load_rules
    from processors.triggers.processor import INPUTS, TriggersProcessor

    settings = _settings()
    processor = TriggersProcessor(load_rules(settings.trigger_rules_file), limits=settings.limits)
    _run_timed_worker(settings, "triggers", processor, list(INPUTS), lambda: f"fired: {dict(processor.fired)}")


@app.command()
def messages() -> None:
    """Run one message worker (triggers -> guard decisions and messages) until SIGTERM or Ctrl-C."""
    from processors.messages.config import load_messages_config
    from processors.messages.processor import INPUTS, MessagesProcessor

    settings = _settings()
    processor = MessagesProcessor(load_messages_config(settings.messages_file), limits=settings.limits)
    _run_timed_worker(settings, "messages", processor, list(INPUTS), lambda: f"outcomes: {dict(processor.outcomes)}")


def _run_timed_worker(settings: Settings, role: WorkerRole, processor: object, topics: list[str],
                      describe: Callable[[], str]) -> None:
    """Host ``processor`` (with timers) in a StatefulWorker of group ``<prefix>-<role>`` until stopped."""
    from streams.stateful import StatefulWorker

    stop = _worker_logging_and_stop(settings, role)
    worker = StatefulWorker(settings.kafka_config(), settings.group_id(role), topics, settings.changelog(role),
                            processor, flush_seconds=settings.processor_flush_seconds,  # type: ignore[arg-type]
                            live_lag_seconds=settings.timers_live_lag_seconds, pseudonymizer=settings.pseudonymizer(),
                            **settings.stateful_options())
    stats = _serve(settings, role, stop, worker)
    logging.getLogger(f"journey.{role}").info("stopped: %s (%s; invalid input skipped: %d)", stats, describe(),
                                              worker.hosted.invalid)


@app.command()
def deliver(adapter: Annotated[str | None, typer.Option(
        "--adapter", help="console, webhook or smtp (default: the delivery_adapter setting).")] = None) -> None:
    """Run one delivery worker (messages -> webhook, SMTP or console) until SIGTERM or Ctrl-C."""
    from streams.delivery import sender_from_settings, worker_from_settings

    settings = _settings()
    try:
        sender = sender_from_settings(settings, adapter)
    except ValueError as exc:
        console.print(f"[red]cannot deliver:[/] {exc}")
        raise typer.Exit(2) from None
    stop = _worker_logging_and_stop(settings, "deliver")
    worker = worker_from_settings(settings, sender)
    stats = _serve(settings, "deliver", stop, worker)
    logging.getLogger("journey.deliver").info("stopped: %s", stats)


@app.command()
def scoring() -> None:
    """Run one scorer (profiles and orders -> scores and labels) until SIGTERM or Ctrl-C."""
    from processors.scoring.processor import ScoringProcessor
    from streams.evaluate import scoring_config
    from streams.scoring import ScoringWorker

    settings = _settings()
    stop = _worker_logging_and_stop(settings, "scoring")
    processor = ScoringProcessor(scoring_config(settings), limits=settings.limits)
    worker = ScoringWorker(settings.kafka_config(), settings.group_id("scoring"), processor,
                           flush_seconds=settings.processor_flush_seconds, changelog=settings.changelog("scoring"),
                           snapshots_topic=settings.model_snapshots, pseudonymizer=settings.pseudonymizer(),
                           **settings.stateful_options())
    stats = _serve(settings, "scoring", stop, worker)
    logging.getLogger("journey.scoring").info("stopped: %s (scored %d, held %d, expired %d)", stats,
                                              processor.scored, processor.held, worker.labels_expired)


@app.command()
def trainer() -> None:
    """Run the trainer (labels -> models, metrics, drift, snapshots) until SIGTERM or Ctrl-C; run exactly one."""
    from schemas.registry import MODEL_LABELS as LABELS_TOPIC
    from streams.evaluate import scoring_config
    from streams.health import worker_health
    from streams.metrics import StatsCollector, WorkerMetrics
    from streams.scoring import TrainerWorker

    settings = _settings()
    stop = _worker_logging_and_stop(settings, "trainer")
    metrics = WorkerMetrics("trainer")
    metrics.stop_event = stop
    worker = TrainerWorker(settings.kafka_config(), settings.group_id("trainer"), scoring_config(settings),
                           metrics=metrics, snapshots_topic=settings.model_snapshots)
    metrics.registry.register(StatsCollector({"journey_events_in": (
        "Records consumed, per topic.", "topic", lambda: {LABELS_TOPIC: worker.stats.labels})}))
    with worker_health(settings, metrics):
        stats = worker.run(stop)
    logging.getLogger("journey.trainer").info("stopped: %s", stats)


@app.command()
def evaluate(replay: ReplayOption = None, mapping: MapOption = None, tz: TzOption = "UTC",
             customers: CustomersOption = 2000, days: DaysOption = 30, seed: SeedOption = 7,
             split: Annotated[float, typer.Option(min=0.1, max=0.95, help="Quantile of prediction times "
                                                  "where the test period starts.")] = 0.7,
             horizon_hours: Annotated[int | None, typer.Option(help="Purchase-propensity horizon (default: "
                                                               "the scoring file's).")] = None,
             churn_days: Annotated[int | None, typer.Option(help="Churn horizon in days (default: the scoring "
                                                            "file's).")] = None,
             rescore_hours: Annotated[int | None, typer.Option(min=1, help="Re-score every customer at least "
                                                               "this often, event time (default: the scoring "
                                                               "file's [rescore] every_hours).")] = None,
             as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
             delimiter: DelimiterOption = None, decimal: DecimalOption = ".", encoding: EncodingOption = None,
             time_format: TimeFormatOption = None) -> None:
    """Replay a source in-process (no broker) and compare each online model with a recency heuristic and two
    tuned offline batch models (prequential ROC AUC, time-based split, bootstrap intervals)."""
    _require_reports_extra("evaluate", "sklearn")
    from streams.evaluate import run_evaluation
    from streams.sources import ReadOptions

    settings = _settings()
    try:
        run_evaluation(settings, console, replay, mapping, tz, customers, days, seed, split, horizon_hours,
                       churn_days, as_json, ReadOptions(delimiter, decimal, encoding, time_format), rescore_hours)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]cannot evaluate {replay or 'the generator'}:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
def models(fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """The latest model_metrics per model (prequential ROC AUC, log loss, Brier, labels) and recent drift."""
    from streams.evaluate import latest_model_metrics, print_model_metrics
    from streams.query import reader

    settings = _readable_settings()
    try:
        with reader(settings) as r:
            metrics, drift = latest_model_metrics(r)
    except Exception as exc:
        _read_failed("cannot read model_metrics", settings, str(exc))
    if fmt == "json":
        for row in metrics:
            sys.stdout.write(json_line(row) + "\n")
        return
    print_model_metrics(Console(), metrics, drift)


@app.command()
def init() -> None:
    """Create the missing topics and ClickHouse tables and views, then exit (a deployment's first job)."""
    from sinks.client import ClickHouseUnavailable, apply_schema, connect
    from streams.topics import ensure_topics, topic_specs

    settings = _settings()
    if settings.embedded_broker or settings.resolved_clickhouse_dsn.startswith("chdb://"):
        console.print("[red]journey init prepares a Kafka cluster and a ClickHouse server:[/] set "
                      "JOURNEY_KAFKA_BOOTSTRAP and JOURNEY_CLICKHOUSE_DSN=http(s)://... (journey run does this itself)")
        raise typer.Exit(2)
    try:
        created = ensure_topics(settings.kafka_config(), topic_specs(settings.topic_partitions, settings.group_prefix),
                                settings.topic_replication)
        client = connect(settings.resolved_clickhouse_dsn, **settings.clickhouse_options())
        apply_schema(client, attribution_window_hours=settings.attribution_window_hours)
        client.close()
    except ClickHouseUnavailable as exc:
        console.print(f"[red]init failed:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"topics created: {', '.join(created) or 'none (all existed)'}; ClickHouse schema applied")


def _serve(settings: Settings, role: WorkerRole, stop: threading.Event, worker: Any, *collectors: Any) -> Any:
    """Run a consumer-group worker until ``stop``, with /metrics, /healthz and /readyz when metrics_port is set.

    Every worker role starts here: the collector's worker thresholds, the role's fetch settings
    (``Settings.consumer_tuning``), librdkafka statistics for the lag metric, ``collectors`` (extra
    metrics) on its registry.
    """
    from streams.gc_tuning import tune_for_worker
    from streams.health import worker_health
    from streams.metrics import WorkerMetrics, instrument

    tune_for_worker()
    metrics = WorkerMetrics(role)
    metrics.stop_event = stop
    worker.configure_consumer(**settings.consumer_tuning(role), **metrics.consumer_overrides())
    instrument(worker, metrics)
    for collector in collectors:
        metrics.registry.register(collector)
    with worker_health(settings, metrics):
        return worker.run(stop)


def _worker_logging_and_stop(settings: Settings | None = None, role: str = "worker") -> threading.Event:
    """Worker processes log to stderr (text or JSON, secrets masked) and stop cleanly on SIGTERM or Ctrl-C."""
    if settings is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    else:
        from plumbing.waiting import configure as configure_waits
        from streams.logs import configure, log_settings

        configure(settings, role)
        log_settings(settings, role)
        configure_waits(settings.stall_seconds)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


@app.command()
def replay(source: Annotated[str, typer.Argument(help="KIND:PATH (see journey run --help)")],
           mapping: MapOption = None, tz: TzOption = "UTC", speedup: SpeedOption = None,
           max_gap: MaxGapOption = None, check: CheckOption = False, delimiter: DelimiterOption = None,
           decimal: DecimalOption = ".", encoding: EncodingOption = None,
           time_format: TimeFormatOption = None) -> None:
    """Replay a dataset or a shop's export into the configured Kafka (JOURNEY_KAFKA_BOOTSTRAP)."""
    reading = {"delimiter": delimiter, "decimal": decimal, "encoding": encoding, "time_format": time_format}
    _produce(*_source(source, mapping, tz, speedup, 0, 0, 0, reading, max_gap, check)[:2])


@app.command()
def generate(customers: CustomersOption = 2000, days: DaysOption = 30, seed: SeedOption = 7,
             output: Annotated[Path | None, typer.Option(help="Write JSON lines here instead of Kafka.")] = None,
             speedup: SpeedOption = None, identities: IdentitiesOption = None) -> None:
    """Synthetic traffic with realistic journeys, seeded and reproducible."""
    records, name, _ = _source(None, None, "UTC", speedup, customers, days, seed, identities=identities)
    if output is None:
        _produce(records, name)
        return
    with output.open("wb") as out:
        count = 0
        for record in records:  # type: ignore[attr-defined]
            out.write(orjson.dumps({"topic": record.topic, "key": record.key.decode(),
                                    "value": orjson.loads(record.value)}) + b"\n")
            count += 1
    console.print(f"wrote {count:,} records to {output}")


def _produce(records: object, name: str) -> None:
    from plumbing.produce import TrackingProducer
    from streams.topics import ensure_topics, topic_specs

    settings = _settings()
    if settings.embedded_broker:
        console.print("[red]no Kafka configured:[/] set JOURNEY_KAFKA_BOOTSTRAP, or use "
                      "`journey run --replay ...` to replay through the embedded broker")
        raise typer.Exit(2)
    kafka = settings.kafka_config()
    ensure_topics(kafka, topic_specs(settings.topic_partitions, settings.group_prefix), settings.topic_replication)
    producer = TrackingProducer(kafka)
    for record in records:  # type: ignore[attr-defined]
        producer.send_raw(record.topic, record.key, record.value)
    producer.flush()
    console.print(f"{name}: {sum(producer.delivered.values()):,} records sent "
                  + ", ".join(f"{t}={n:,}" for t, n in sorted(producer.delivered.items())))


@app.command()
def query(sql: Annotated[str, typer.Argument(help="A ClickHouse SQL query.")],
          fmt: Annotated[str, typer.Option("--format", help="table, json (JSON lines), csv or tsv.")] = "table",
          vertical: Annotated[bool, typer.Option("--vertical", help="One `column: value` line per cell (the "
                                                 "table turns vertical by itself when too wide).")] = False) -> None:
    """Run SQL against the configured ClickHouse (embedded or server) and print the rows."""
    from streams.query import run_query
    from streams.query_format import FORMATS, explain_error, print_result

    if fmt not in FORMATS:
        console.print(f"[red]--format must be one of {', '.join(FORMATS)}, not {markup_safe(repr(fmt))}[/]")
        raise typer.Exit(2)
    settings = _readable_settings()
    try:
        columns, rows = run_query(settings, sql)
    except Exception as exc:
        _read_failed("query failed", settings, explain_error(sql, str(exc)))
    print_result(Console(), columns, rows, fmt, vertical)
    binary = sum(isinstance(v, bytes) for row in rows for v in row)
    if binary:
        console.print(f"note: {binary} values are not valid UTF-8: their other bytes are shown as \\xNN")


@app.command()
def report(out: Annotated[Path | None, typer.Option(help="Directory for the PNG charts and report.html "
                                                     "(default: <data dir>/report).")] = None,
           days: Annotated[int | None, typer.Option(min=1, help="Only the last N days of event time.")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print the report's data as JSON instead of "
                                                           "tables.")] = False) -> None:
    """The main KPIs as tables in the terminal, and as charts (PNG files and one self-contained HTML page)."""
    if not as_json:
        _require_reports_extra("report", "matplotlib")
    from sinks.report import build_report, print_report, write_charts
    from streams.evaluate import scoring_config
    from streams.query import reader

    settings = _readable_settings()
    config = scoring_config(settings)
    horizons = {m: config.horizon_ms(m) // 1000 for m in ("purchase_propensity", "churn")}
    try:
        with reader(settings) as r:
            built = build_report(r, days, horizons)
    except Exception as exc:
        _read_failed("report failed", settings, str(exc))
    out_dir = out or settings.data_dir / "report"
    pngs, page = write_charts(built, out_dir)
    if as_json:
        sys.stdout.write(orjson.dumps(built.as_dict(), default=str).decode() + "\n")
    else:
        print_report(built, Console())
    console.print(f"charts: {len(pngs)} PNG files and {page} (self-contained HTML)")


@app.command()
def dashboard(port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: the dashboard_port "
                                                          "setting; 0 picks a free one).")] = None) -> None:
    """Serve the live dashboard over the configured ClickHouse until Ctrl-C (also while a pipeline runs)."""
    from sinks.dashboard import DashboardServer
    from streams.query import reader

    settings = _settings()
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop it, also when started with SIGINT ignored (a shell's `cmd &` does that,
    # and Python then raises no KeyboardInterrupt).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with DashboardServer(lambda: reader(settings), settings.dashboard_port if port is None else port) as board:
        console.print(f"[bold]dashboard[/] {board.url}  (Ctrl-C stops it)")
        stop.wait()


@app.command()
def customer(customer_id: Annotated[str, typer.Argument(help="The customer id.")],
             fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text") -> None:
    """One customer's profile: from the running pipeline if there is one, otherwise from ClickHouse."""
    from sinks.profiles import profile_from_clickhouse, profile_from_topic
    from streams.runfile import running

    settings = _settings()
    live = running(settings.data_dir)
    if live is None and settings.embedded_broker:
        _readable_settings(settings)
    if live is not None or not settings.embedded_broker:
        bootstrap = str(live["bootstrap"]) if live else None
        partitions = int(live["partitions"]) if live else settings.topic_partitions  # type: ignore[call-overload]
        profile, where = profile_from_topic(settings.kafka_config(bootstrap), customer_id, partitions,
                                             settings.stall_seconds), "the live topic"
    else:
        from streams.query import reader

        try:
            with reader(settings) as r:
                profile, where = profile_from_clickhouse(r, customer_id), "ClickHouse"
        except Exception as exc:
            _read_failed("cannot read the profile", settings, str(exc))
    if profile is None:
        console.print(f"[yellow]no profile for customer {markup_safe(repr(customer_id))}[/] (looked in {where})")
        raise typer.Exit(1)
    if fmt == "json":
        sys.stdout.write(json_line(profile) + "\n")
        return
    out = Console()
    segments = ", ".join(map(str, profile["segments"])) or "-"
    out.print(f"[bold]customer {markup_safe(customer_id)}[/]  stage [cyan]{markup_safe(profile['stage'])}[/] since "
              f"{markup_safe(profile['stage_since'])}  segments: {markup_safe(segments)}  (from {where}, as of "
              f"{markup_safe(profile['as_of'])})")
    table = Table("feature", "value", title=f"{profile['events_total']:,} events", title_justify="left")
    for name, value in sorted(profile["features"].items()):
        if value not in (None, 0, 0.0, "", False):
            table.add_row(cell(name), cell(_readable(name, value)))
    out.print(table)


@app.command()
def identity(customer_id: Annotated[str, typer.Argument(help="A customer id (or an anonymous id).")],
             fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text") -> None:
    """A customer's linked identifiers and merge history (ClickHouse's identity_merges)."""
    from sinks.identity import identity_of
    from streams.query import reader

    settings = _readable_settings()
    try:
        with reader(settings) as r:
            found = identity_of(r, customer_id)
    except Exception as exc:
        _read_failed("cannot read the identity history", settings, str(exc))
    if fmt == "json":
        sys.stdout.write(json_line(found) + "\n")
        return
    if not found["history"]:
        console.print(f"[yellow]no identity records for {markup_safe(repr(customer_id))}[/]")
        raise typer.Exit(1)
    out = Console()
    where = f"  merged into [cyan]{markup_safe(found['merged_into'])}[/]" if found["merged_into"] else ""
    out.print(f"[bold]identity {markup_safe(customer_id)}[/]{where}")
    linked = ", ".join(f"{i['kind']} {i['id']}" for i in found["identifiers"]) or "-"
    out.print(f"identifiers: {markup_safe(linked)}")
    table = Table("event time", "action", "reason", "from", "into", title="history", title_justify="left")
    for r in found["history"]:
        table.add_row(cell(r["event_time"]), cell(r["action"]), cell(r["reason"]),
                      cell(f"{r['from_kind']} {r['from_id']}"), cell(r["into_id"]))
    out.print(table)


def _readable(name: str, value: object) -> str:
    if name.endswith("_ms") and isinstance(value, int):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


@app.command("recommend-eval")
def recommend_eval(replay: Annotated[str | None, typer.Option(
        "--replay", help="KIND:PATH of the history (default: taobao: the shared Taobao sample).")] = None,
                   k: Annotated[int, typer.Option("--k", min=1, help="Recommendations per buyer.")] = 10) -> None:
    """Hit rate at K of the co-view/co-buy recommender against most-popular (each buyer's last purchase hidden)."""
    from processors.messages.evaluate_recs import DEFAULT_SAMPLE, evaluate, interactions, table
    from streams.sources import open_source

    source = replay or f"taobao:{DEFAULT_SAMPLE}"
    try:
        events = interactions(open_source(source)[0])
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]cannot read {source}:[/] {exc}")
        raise typer.Exit(2) from None
    sys.stdout.write(table(evaluate(events, k=k), source, k) + "\n")


@privacy_app.command("erase")
def privacy_erase(customer_ids: Annotated[list[str], typer.Argument(
        metavar="ID", help="The customer id; several are erased together (one ClickHouse pass for all).")]) -> None:
    """Erase customers: ClickHouse at once, processor state now or the next time the workers run."""
    from streams.privacy import erase_customers

    reports = erase_customers(_settings(), customer_ids)
    for report in reports:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    if any(isinstance(r["processors"], dict) and "pending" in r["processors"].values() for r in reports):
        console.print("[yellow]pending processors apply the erasure when they reach it (or next run); what they "
                      "store in ClickHouse before that goes with another `journey privacy erase` of the same ids[/]")
    if any(isinstance(r.get("clickhouse_in_flight"), str) for r in reports):
        console.print("[yellow]the sink had not stored everything in time: erase the same ids again later to "
                      "remove what was still on its way[/]")


@privacy_app.command("export")
def privacy_export(customer_id: Annotated[str, typer.Argument(help="The customer id.")],
                   out: Annotated[Path | None, typer.Option("--out", help="JSON file (default: "
                                                            "<data dir>/exports/<hmac>.json).")] = None) -> None:
    """Write everything held about a customer (ClickHouse rows, processor state) to a JSON file."""
    from streams.privacy import export_customer

    path, counts = export_customer(_settings(), customer_id, out)
    console.print(f"wrote {path}: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing held"))


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path, typer.Argument(help="Where to write the JSON Schema files.")]) -> None:
    """Write the JSON Schema of every topic's contract to DIRECTORY."""
    from schemas.registry import export_json_schemas

    for path in export_json_schemas(directory):
        console.print(f"wrote {path}")


def _logging(path: Path, settings: Settings | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, filename=path, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings is not None:  # the supervisor's log masks configured secrets like the workers' logs
        from streams.logs import RedactSecrets, secrets_of

        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactSecrets(secrets_of(settings)))


#: Commands that only read (no producer, no child process): they end without native teardown.
READ_ONLY_COMMANDS = frozenset({"query", "report", "customer", "models", "schemas"})


def main() -> None:
    """The ``journey`` command; a read-only command ends the process without native teardown.

    A native library's threads (pyarrow's, chDB's) are not always joined at interpreter exit, and
    now and then their static destructors abort the process (``terminate called without an active
    exception``) after the command has printed everything: a correct ``journey query`` then
    exited with -6. A read-only command has closed its client by the time ``app()`` returns, so
    its process flushes its logs and streams and ends with the command's own status. Every other
    command exits normally (a worker's clients finish their own shutdown).
    """
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if command not in READ_ONLY_COMMANDS:
        app()
        return
    code: int | str | None = 0
    try:
        app()
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):
        sys.stderr.write(code + "\n")
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
