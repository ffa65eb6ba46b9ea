"""``journey run``: the whole pipeline on one machine, from a source to ClickHouse, then a summary.

Steps: start the embedded broker (unless one is configured), create the topics, start
the worker processes, feed the source, wait until every fed record has been
committed by the sink group, stop the workers, print what landed. Whatever happens
(error, Ctrl-C), no broker or worker is left behind: children also die with us.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from plumbing.produce import TrackingProducer
from plumbing.terminal import cell
from plumbing.waiting import StallWatch, configure
from schemas.registry import (
    CUSTOMER_FEATURES,
    DEAD_LETTERS,
    DELIVERIES,
    MESSAGES,
    MODEL_LABELS,
    MODEL_METRICS,
    ORDERS,
    SCORES,
    TRIGGERS,
)
from sinks.client import DEAD_LETTER_TABLE, RAW_TABLES, apply_schema, connect
from sinks.dashboard import DashboardServer
from sinks.ingest import OUTPUT_TABLES
from streams.broker import EmbeddedBroker
from streams.progress import GroupProgress, OutputCounter, end_offsets_by_eof, progress_display, short_count
from streams.query import reader
from streams.runfile import claim, live_run
from streams.settings import Settings
from streams.sources.record import SourceRecord
from streams.topics import ensure_topics, topic_specs
from streams.workers import Worker, start_worker

#: Seconds between two updates of the feeding bar (and checks of the workers and a stop request).
FEED_BAR_SECONDS = 0.5


@dataclass
class RunSummary:
    """What one run fed, what landed, and how long it took."""

    fed: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    feed_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during `journey run`: stop the workers and the broker (``signum`` says which)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: The signal that asked the run to stop, if one did. The handler raises at once; the run's loops
#: also check this, so a stop is not lost where native code called back into Python swallows the raise.
_stop_requested: list[int] = []


def request_stop(signum: int, frame: object = None) -> None:
    """Signal handler for SIGINT and SIGTERM: remember the request, then interrupt the main thread."""
    _stop_requested.append(signum)
    raise Interrupted(signum)


def stop_if_requested() -> None:
    if _stop_requested:
        raise Interrupted(_stop_requested[0])


def run_pipeline(settings: Settings, records: Iterable[SourceRecord], source_name: str,
                 console: Console, total: int | None = None) -> RunSummary:
    """Run the pipeline over ``records`` and return the summary (also printed).

    Raises :class:`streams.runfile.RunInProgress` before it starts anything when another run
    works on the same data directory."""
    started = time.monotonic()
    summary = RunSummary()
    configure(settings.stall_seconds)
    with claim(settings.data_dir):
        console.print(f"[bold]journey run[/]: {cell(source_name)}; starting ClickHouse, the broker and "
                      f"{8 if settings.identity_resolution else 7} workers")
        _run(settings, records, console, total, summary)
    summary.seconds = time.monotonic() - started
    print_summary(console, summary)
    return summary


def _run(settings: Settings, records: Iterable[SourceRecord], console: Console, total: int | None,
         summary: RunSummary) -> None:
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    dsn = settings.resolved_clickhouse_dsn
    embedded_db = dsn.startswith("chdb://")

    # The schema is applied before any worker opens the database (chDB: one process at a time).
    client = connect(dsn, **settings.clickhouse_options())
    apply_schema(client, settings.raw_retention_days, settings.attribution_window_hours)
    if embedded_db:
        client.close()

    with ExitStack() as stack:
        broker = None if settings.kafka_bootstrap else stack.enter_context(
            EmbeddedBroker(log_path=log_dir / "broker.log"))
        bootstrap = settings.kafka_bootstrap or broker.bootstrap  # type: ignore[union-attr]
        where = "embedded broker" if settings.embedded_broker else "Kafka"
        console.print(f"[bold]journey[/] {where} at {bootstrap}; ClickHouse {_describe_dsn(dsn)}; "
                      f"data in {settings.data_dir}")
        kafka = settings.kafka_config(bootstrap)
        ensure_topics(kafka, topic_specs(settings.topic_partitions, settings.group_prefix), settings.topic_replication)
        _hand_over_suppressions(settings, kafka)
        stack.enter_context(live_run(settings.data_dir, bootstrap, settings.topic_partitions))

        env = {"JOURNEY_KAFKA_BOOTSTRAP": bootstrap, "JOURNEY_DATA_DIR": str(settings.data_dir.resolve()),
               "JOURNEY_CLICKHOUSE_DSN": dsn}
        if settings.metrics_port is not None:  # one port cannot serve two workers: each takes a free one (its log)
            env["JOURNEY_METRICS_PORT"] = "0"
        sink = start_worker("sink", ["sink"], env, log_dir)
        identity = start_worker("identity", ["identity-stage"], env, log_dir) if settings.identity_resolution else None
        features = start_worker("features", ["features"], env, log_dir)
        scoring = start_worker("scoring", ["scoring"], env, log_dir)
        trainer = start_worker("trainer", ["trainer"], env, log_dir)
        triggers = start_worker("triggers", ["triggers"], env, log_dir)
        messages = start_worker("messages", ["messages"], env, log_dir)
        delivery_file = settings.delivery_file or settings.data_dir.resolve() / "delivered.jsonl"
        adapter = settings.delivery_adapter
        deliver = start_worker("deliver", ["deliver"], {**env, "JOURNEY_DELIVERY_FILE": str(delivery_file)}, log_dir)
        workers: list[Worker] = [w for w in (sink, identity, features, scoring, trainer, triggers, messages, deliver)
                                 if w is not None]
        stack.callback(_stop_all, workers, settings.stop_seconds)

        def alive() -> None:
            """Stop at once on Ctrl-C or SIGTERM, or when a worker or the broker has died (with its last log
            lines)."""
            stop_if_requested()
            if broker is not None:
                broker.check()
            for worker in workers:
                worker.check()

        if settings.dashboard:
            board = stack.enter_context(DashboardServer(lambda: reader(settings, direct=False),
                                                        settings.dashboard_port))
            console.print(f"[bold]dashboard[/] {board.url} (while the run lasts; `journey dashboard` serves it "
                          "afterwards)")

        # What each stage writes, counted from here on: the display shows outputs first, inputs read second.
        counters = {topic: OutputCounter(kafka, [topic]) for topic in
                    (CUSTOMER_FEATURES, SCORES, MODEL_METRICS, TRIGGERS, MESSAGES, DELIVERIES)}
        for counter in counters.values():
            stack.callback(counter.close)
        producer = TrackingProducer(kafka)
        progress = GroupProgress(kafka, settings.group_id("sink"))
        features_progress = GroupProgress(kafka, settings.group_id("features"))
        stack.callback(progress.close)
        stack.callback(features_progress.close)
        with progress_display(console) as bar:
            fed_task = bar.add_task("fed", total=total, rate="", in_label="sent")
            feed_started = time.monotonic()
            sent = 0
            shown = feed_started
            for record in records:
                producer.send_raw(record.topic, record.key, record.value)
                sent += 1
                now = time.monotonic()
                if now - shown >= FEED_BAR_SECONDS:  # by time: a paced replay may send few records a second
                    shown = now
                    bar.update(fed_task, completed=sent, rate=f"{short_count(sent / (now - feed_started))}/s")
                    alive()
            producer.flush(between=alive)
            summary.feed_seconds = time.monotonic() - feed_started
            rate = sent / max(summary.feed_seconds, 1e-9)
            bar.update(fed_task, completed=sent, total=sent, rate=f"{short_count(rate)}/s")

            # A replay's own dead letters (a CSV row with the wrong field count) are the sink's alone.
            _wait(bar, "stored", progress, dict(producer.end_offsets), sent, alive)
            ends = {tp: end for tp, end in producer.end_offsets.items() if tp[0] != DEAD_LETTERS}
            if identity is None:
                profiled = _wait(bar, "features", features_progress, ends, sent - producer.delivered[DEAD_LETTERS],
                                 alive, Outputs(counters[CUSTOMER_FEATURES], "profiles"))
            else:  # the identity stage resolves every input, then stops: its last links and events go out
                _wait_group(bar, kafka, settings.group_id("identity"), "identity", ends, alive)
                _stop(identity, workers, settings)
                profiled = _wait_features(bar, kafka, features_progress, alive,
                                          Outputs(counters[CUSTOMER_FEATURES], "profiles"))
            # The features worker writes its last state and profiles when it stops; then the
            # sink stores every profile and late event it emitted.
            _stop(features, workers, settings)
            bar.update(profiled, out=counters[CUSTOMER_FEATURES].count(fresh=True))
            _drain_scoring(bar, kafka, settings, ends, scoring, trainer, workers, alive, counters)
            # Triggers read the inputs, profiles and scores; messages read the triggers; delivery the messages.
            # Each stops once it has committed all of them: its last timers, decisions and sends go out.
            _drain(bar, kafka, settings, "triggers", "triggers", ends, [CUSTOMER_FEATURES, SCORES],
                   triggers, workers, alive, Outputs(counters[TRIGGERS], "fired"))
            _drain(bar, kafka, settings, "messages", "messages", ends, [CUSTOMER_FEATURES, TRIGGERS],
                   messages, workers, alive, Outputs(counters[MESSAGES], "messages"))
            _drain(bar, kafka, settings, f"deliver-{adapter}", "delivery", {}, [MESSAGES], deliver,
                   workers, alive, Outputs(counters[DELIVERIES], "delivered"))
            summary.notes.append(f"messages sent by the {adapter} adapter"
                                 + (f" were appended to {delivery_file}" if adapter == "console" else ""))
            outputs = end_offsets_by_eof(kafka, list(OUTPUT_TABLES), between=alive)
            _wait(bar, "outputs stored", progress, outputs, sum(outputs.values()), alive)
        summary.fed = dict(producer.delivered)
        _stop_all(workers, settings.stop_seconds)

    with reader(settings) as r:
        for table in [*RAW_TABLES.values(), DEAD_LETTER_TABLE, "late_events"]:
            summary.rows[table] = int(r.rows(f"SELECT count() FROM {table}")[1][0][0])
        summary.rows["customer_profiles"] = int(r.rows("SELECT count() FROM customer_profiles FINAL")[1][0][0])
        summary.rows["scores"] = int(r.rows("SELECT count() FROM scores FINAL")[1][0][0])
        summary.rows["model_metrics"] = int(r.rows("SELECT count() FROM model_metrics")[1][0][0])
        for table in ("triggers", "guard_decisions", "messages", "deliveries"):
            summary.rows[table] = int(r.rows(f"SELECT count() FROM {table} FINAL")[1][0][0])
        _, by_reason = r.rows(f"SELECT reason, count() FROM {DEAD_LETTER_TABLE} GROUP BY reason ORDER BY reason")
        summary.dead_letters = {str(reason): int(n) for reason, n in by_reason}


@dataclass
class Outputs:
    """A stage's output topic, counted, and what its records are (``fired``, ``profiles``...)."""

    counter: OutputCounter
    label: str


def _drain_scoring(bar: Progress, kafka: dict[str, str], settings: Settings, ends: dict[tuple[str, int], int],
                   scoring: Worker, trainer: Worker, workers: list[Worker], alive: Callable[[], None],
                   counters: dict[str, OutputCounter]) -> None:
    """Wait until the scorers took every profile and order, stop them (their last labels go out), then
    wait until the trainer learned every label and stop it (its last metrics and snapshot go out)."""
    stage_ends = {tp: end for tp, end in ends.items() if tp[0] == ORDERS}
    stage_ends.update(end_offsets_by_eof(kafka, [CUSTOMER_FEATURES], between=alive))
    scored = _wait_group(bar, kafka, settings.group_id("scoring"), "scoring", stage_ends, alive,
                         Outputs(counters[SCORES], "scores"))
    _stop(scoring, workers, settings)
    bar.update(scored, out=counters[SCORES].count(fresh=True))
    learned = _wait_group(bar, kafka, settings.group_id("trainer"), "trainer (labels)",
                          end_offsets_by_eof(kafka, [MODEL_LABELS], between=alive), alive,
                          Outputs(counters[MODEL_METRICS], "metrics"))
    _stop(trainer, workers, settings)
    bar.update(learned, out=counters[MODEL_METRICS].count(fresh=True))


def _drain(bar: Progress, kafka: dict[str, str], settings: Settings, role: str, label: str,
           ends: dict[tuple[str, int], int], outputs: list[str], worker: Worker, workers: list[Worker],
           alive: Callable[[], None], produced: Outputs) -> None:
    """Wait until group ``<prefix>-<role>`` has committed ``ends`` and the ends of ``outputs``, then stop it;
    the line shows what it ``produced`` (counted again once it has stopped: its last records go out then)."""
    stage_ends = {**ends, **end_offsets_by_eof(kafka, outputs, between=alive)}
    task = _wait_group(bar, kafka, settings.group_id(role), label, stage_ends, alive, produced)
    _stop(worker, workers, settings)
    bar.update(task, out=produced.counter.count(fresh=True))


def _stop(worker: Worker, workers: list[Worker], settings: Settings) -> None:
    """Stop a worker whose work is done (it is no longer watched: its exit is expected); fail the run unless
    it stopped cleanly (its last state and outputs would be missing)."""
    workers.remove(worker)
    worker.finish(settings.stop_seconds)


def _wait_group(bar: Progress, kafka: dict[str, str], group: str, label: str, ends: dict[tuple[str, int], int],
                alive: Callable[[], None], produced: Outputs | None = None) -> TaskID:
    progress = GroupProgress(kafka, group)
    try:
        return _wait(bar, label, progress, ends, sum(ends.values()), alive, produced)
    finally:
        progress.close()


def _wait_features(bar: Progress, kafka: dict[str, str], progress: GroupProgress, alive: Callable[[], None],
                   produced: Outputs) -> TaskID:
    """Wait until the features group has read every resolved event, identity decision and profile handoff.

    The features worker itself writes to two of those topics (a retired profile's state goes to
    ``profile-handoffs``, an event that reached a retired profile is forwarded on its ``identified-*``
    topic), so their ends are taken again after each wait until a wait finds nothing new.
    """
    from schemas.identity import IDENTIFIED_TOPICS, PROFILE_HANDOFFS
    from schemas.registry import IDENTITY_MERGES

    topics = [*sorted(IDENTIFIED_TOPICS), IDENTITY_MERGES, PROFILE_HANDOFFS]
    ends = end_offsets_by_eof(kafka, topics, between=alive)
    while True:
        task = _wait(bar, "features", progress, ends, sum(ends.values()), alive, produced)
        again = end_offsets_by_eof(kafka, topics, between=alive)
        if again == ends:
            return task
        bar.remove_task(task)
        ends = again


def _hand_over_suppressions(settings: Settings, kafka: dict[str, str]) -> None:
    """A fresh embedded broker knows no erasure: give its processors the suppression list (before they start)."""
    if not settings.embedded_broker:
        return  # a real Kafka kept the requests; the processors read them from their committed offsets
    from sinks.privacy import suppressed_subjects
    from streams.privacy import send_suppressions

    with reader(settings) as r:
        subjects = suppressed_subjects(r)
    send_suppressions(kafka, settings.topic_partitions, subjects)


def _wait(bar: Progress, label: str, progress: GroupProgress, ends: dict[tuple[str, int], int], total: int,
          alive: Callable[[], None], produced: Outputs | None = None) -> TaskID:
    """Show ``label`` until the group has committed everything in ``ends`` (its inputs read; with ``produced``,
    its outputs first).

    Fails at once when a worker dies (``alive`` raises), and otherwise only when the group's
    committed offsets have not moved and it produced nothing for the stall time (the ``stall_seconds``
    setting): no fixed deadline, so a loaded machine makes the wait longer, not failed. Outputs count
    as progress: a scorer firing a long history's re-scoring timers produces scores for minutes before
    its next commit.
    """
    task = bar.add_task(label, total=total, out=None, out_label=produced.label if produced else "")
    watch = StallWatch(f"waiting for '{label}' (consumer group {progress.group_id})")
    remaining: int | None = None
    while True:
        now = progress.try_remaining(ends)  # None: the broker did not answer in time; asked again
        if now is not None:
            remaining = now
            out = produced.counter.count() if produced else None
            bar.update(task, completed=total - remaining, out=out)
            if remaining == 0:
                return task
            watch.observe((remaining, out))
        alive()
        watch.check(f"{remaining if remaining is not None else 'unknown'} of {total:,} records not committed; "
                    "see the workers' logs in the data directory's logs/")
        time.sleep(0.25)


def _stop_all(workers: list[Worker], timeout: float) -> None:
    for worker in workers:
        worker.stop(timeout)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _describe_dsn(dsn: str) -> str:
    if dsn.startswith("chdb://"):
        return f"embedded ({dsn.removeprefix('chdb://')})"
    return dsn.split("@")[-1]


def print_summary(console: Console, summary: RunSummary) -> None:
    fed = Table(title="Events fed per topic", title_justify="left")
    fed.add_column("topic")
    fed.add_column("events", justify="right")
    for topic, count in sorted(summary.fed.items()):
        fed.add_row(topic, f"{count:,}")
    rows = Table(title="Rows in ClickHouse (all runs)", title_justify="left")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for table, count in summary.rows.items():
        rows.add_row(table, f"{count:,}")
    console.print(fed, rows)
    if summary.dead_letters:
        letters = Table(title="Dead letters by reason (all runs)", title_justify="left")
        letters.add_column("reason")
        letters.add_column("count", justify="right")
        for reason, count in summary.dead_letters.items():
            letters.add_row(cell(reason), f"{count:,}")
        console.print(letters)
    for note in summary.notes:
        console.print(cell(note))
    total = sum(summary.fed.values())
    console.print(f"{total:,} events fed in {summary.feed_seconds:.1f}s; whole run {summary.seconds:.1f}s "
                  f"({rate(total, summary.seconds)} events/s end to end)")


def rate(count: int, seconds: float) -> str:
    """``count`` per second for the summary: whole numbers from 10 on, two significant digits below (a run of a
    few events must not read "0 events/s")."""
    per_second = count / max(seconds, 1e-9)
    return f"{per_second:,.0f}" if per_second >= 10 or per_second == 0 else f"{per_second:.2g}"


