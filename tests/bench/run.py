"""``make bench``: replay a fixed, seeded workload through each stage and compare with faust, in one run.

Stages, each in its own process: the sink's hot path in-process (validate / Arrow / insert
split, and the 10k-row insert rate); produce with TrackingProducer; confluent-kafka
consuming alone; the real ingestion sink (``python -m streams.cli sink``) over the backlog,
its tables then counted in chDB; the same under py-spy; naive faust (one event at a time,
contract validation, a table); faust's ceiling (``take()`` batches, decode only); the
features stage against faust and Quix Streams on the same job (``tests/bench/features.py``); the
identity stage over the same backlog, as a ratio to the features stage (``tests/bench/identity.py``);
a live run with producer and sink together; and the dashboard's queries over 1M events in a fresh
chDB (``tests/bench/dashboard_queries.py``; ``--only-dashboard`` runs it alone; ``--only-identity`` runs the
identity and features stages alone). Writes BENCHMARKS.md.
Exits 1 if any stage lost or duplicated data, 2 if a stage failed or timed out; a missed speed target
is only reported.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from streams.broker import EmbeddedBroker
from streams.progress import GroupProgress
from streams.topics import ensure_topics, topic_specs
from tests.bench import (
    dashboard_queries,
    features,
    features_report,
    identity,
    identity_report,
    report,
    triggers,
    triggers_report,
)
from tests.bench.procs import PYTHON, ROOT, BenchError, Child, ProcSample, sample, system_busy, wait_until
from tests.bench.profile import summarise
from tests.bench.workload import CUSTOMERS, DEFAULT_EVENTS, DEFAULT_SEED, QUICK_EVENTS, Workload, generate, save

PARTITIONS = 4
POLL = 0.05
PRINT_EVERY = 2.0
JOIN_TIMEOUT = 90.0
STALL_TIMEOUT = 60.0
CALM = 0.3  # cores used by other processes under which the machine counts as calm
MIN_EVENTS = 40_000  # fewer leave too few sink commits to measure between

Offsets = dict[tuple[str, int], int]


@dataclass
class BacklogRun:
    """A worker's pass over the backlog: when its group first and last committed, and what it used."""

    worker: Child
    t0: float
    done0: int
    t_end: float
    total: int
    sampled: ProcSample
    cpu0: float
    broker_seconds: float
    busy: float

    def steady_rate(self) -> float:
        return (self.total - self.done0) / max(self.t_end - self.t0, 1e-9)


def say(stage: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stage:<13} {message}", flush=True)


class Bench:
    """One benchmark run: its temp dir, the processes and brokers it started, and the results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="journey-bench-"))
        self.children: list[Child] = []
        self.brokers: list[EmbeddedBroker] = []
        self.results = report.Results(started=datetime.now(UTC), events=args.events, quick=args.quick)
        self.work: Workload | None = None
        self.workload_path = self.tmp / "workload.bin"
        self.series: list[tuple[float, int]] = []  # (time, committed) seen by the last _follow

    # -- helpers ------------------------------------------------------------------------------
    def child(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        started = Child(name, args, self.tmp / f"{name}.log", env)
        self.children.append(started)
        return started

    def broker(self, name: str) -> EmbeddedBroker:
        broker = EmbeddedBroker(log_path=self.tmp / f"{name}.log")
        self.brokers.append(broker)
        broker.start()
        ensure_topics({"bootstrap.servers": broker.bootstrap}, topic_specs(PARTITIONS))
        say(name, f"Tansu on {broker.bootstrap}, topics created ({PARTITIONS} partitions each)")
        return broker

    def cleanup(self) -> None:
        for started in self.children:
            if started.alive():
                started.stop(signal.SIGKILL, 5)
        for broker in self.brokers:
            broker.stop()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"kept {self.tmp}")

    def check(self, stage: str, problems: list[str]) -> None:
        self.results.checks[stage] = problems
        if problems:
            say(stage, "DATA MISMATCH: " + "; ".join(problems))
        else:
            say(stage, "data check OK")

    @property
    def w(self) -> Workload:
        assert self.work is not None
        return self.work

    # -- stages -------------------------------------------------------------------------------
    def build_workload(self) -> None:
        say("workload", f"building {self.args.events:,} events (seed {self.args.seed})")
        self.work = generate(self.args.events, self.args.seed)
        save(self.work, self.workload_path)
        w = self.work
        self.results.workload = {
            "total": w.total, "seed": w.seed, "avg_bytes": w.bytes_total / max(w.total, 1), "customers": CUSTOMERS,
            "valid": dict(w.valid), "types": dict(w.types), "total_invalid": w.total_invalid,
            "invalid_kinds": dict(w.invalid_kinds), "digest": w.digest,
        }
        say("workload", f"{w.total:,} records, {w.bytes_total / w.total:.0f} B avg, valid {dict(w.valid)}, "
                        f"invalid {dict(w.invalid_kinds)} ({w.build_seconds:.1f}s)")

    def hotpath(self) -> None:
        stage = "hotpath"
        out = self.tmp / "hotpath.json"
        say(stage, "validate / Arrow / insert split in one process, then 10k-row inserts into clickstream_events")
        busy0, wall0 = others_busy(), time.monotonic()
        started = self.child(stage, [PYTHON, "-m", "tests.bench.stages", "hotpath", "--workload",
                                     str(self.workload_path), "--db", str(self.tmp / "hotpath-db"), "--out", str(out)])
        if started.wait(timeout=60 + self.w.total / 2_000) != 0:
            raise BenchError(f"{stage}: exited with {started.proc.returncode}\n{started.tail()}")
        hot = orjson.loads(out.read_bytes())
        hot["other_cores"] = other_load(others_busy() - busy0, hot["process_cpu"], time.monotonic() - wall0)
        self.results.hotpath = hot
        expected = {"clickstream_events": self.w.valid["clickstream"], "order_events": self.w.valid["orders"],
                    "chat_messages": self.w.valid["chat"], "dead_letters": self.w.total_invalid}
        self.check(stage, [f"{table}: stored {hot['stored'].get(table)} != expected {n}"
                           for table, n in expected.items() if hot["stored"].get(table) != n])
        split = report.hot_split(hot)
        say(stage, f"validate {split['validate']:.1f} us/ev, Arrow {split['arrow']:.1f}, insert {split['insert']:.1f}, "
                   f"dead letters {split['dead_letters']:.2f}; insert alone {split['insert_rows_per_s']:,.0f} rows/s")

    def produce(self, stage: str, bootstrap: str, wait: bool = True) -> tuple[Child, Path]:
        out = self.tmp / f"{stage}.json"
        started = self.child(stage, [PYTHON, "-m", "tests.bench.stages", "produce", "--workload",
                                     str(self.workload_path), "--bootstrap", bootstrap, "--out", str(out)])
        if wait:
            self.finish_produce(stage, started, out)
        return started, out

    def finish_produce(self, stage: str, started: Child, out: Path,
                       broker: EmbeddedBroker | None = None) -> tuple[dict[str, object], Offsets]:
        busy0, wall0 = others_busy(), time.monotonic()
        broker0 = broker_cpu(broker) if broker else 0.0
        code = started.wait(timeout=60 + self.w.total / 5_000)
        if code != 0 or not out.exists():
            raise BenchError(f"{stage}: producer exited with {code}\n{started.tail()}")
        result = orjson.loads(out.read_bytes())
        ends: Offsets = {(t, p): o for t, p, o in result["end_offsets"]}
        delivered = result["delivered"]
        problems = [f"{topic}: acknowledged {delivered.get(topic, 0):,} != sent {n:,}"
                    for topic, n in (self.w.valid + self.w.invalid).items() if delivered.get(topic, 0) != n]
        if sum(ends.values()) != self.w.total:
            problems.append(f"end offsets add up to {sum(ends.values()):,}, not {self.w.total:,}")
        self.check(stage, problems)
        self.results.rates[stage] = report.Rate(
            "produce: TrackingProducer -> Tansu" + (" (while the sink runs)" if stage == "live_produce" else ""),
            self.w.total, result["seconds"], "1 (producer)", result["peak_rss_mb"], result["cpu_seconds"])
        if broker is not None:  # (the live producer shares its window with the sink: accounted there)
            broker_seconds = broker_cpu(broker) - broker0
            self.results.rates[stage].broker_cpu_seconds = broker_seconds
            self.results.rates[stage].other_cores = other_load(
                others_busy() - busy0, result["process_cpu"] + broker_seconds, time.monotonic() - wall0)
        say(stage, f"{self.w.total:,} records acknowledged in {result['seconds']:.2f}s "
                   f"({self.w.total / result['seconds']:,.0f}/s)")
        return result, ends

    def consume_only(self, broker: EmbeddedBroker) -> None:
        """confluent-kafka reading the backlog with the sink's consumer settings and doing nothing else."""
        stage = "consume"
        out = self.tmp / "consume.json"
        started = self.child(stage, [PYTHON, "-m", "tests.bench.stages", "consume", "--bootstrap", broker.bootstrap,
                                     "--produced", str(self.tmp / "produce.json"), "--out", str(out)])
        broker0, busy0, wall0 = broker_cpu(broker), others_busy(), time.monotonic()
        if started.wait(timeout=180) != 0 or not out.exists():
            raise BenchError(f"{stage}: exited with {started.proc.returncode}\n{started.tail()}")
        result = orjson.loads(out.read_bytes())
        self.check(stage, [] if result["events"] == self.w.total
                   else [f"read {result['events']:,} records, expected {self.w.total:,}"])
        self.results.rates[stage] = report.Rate(
            "confluent-kafka consume only (the sink's consumer settings)", result["events"], result["seconds"],
            "1 (consumer)", result["peak_rss_mb"], result["cpu_seconds"], broker_cpu(broker) - broker0,
            other_load(others_busy() - busy0, result["process_cpu"] + broker_cpu(broker) - broker0,
                       time.monotonic() - wall0))
        say(stage, f"{result['events']:,} records in {result['seconds']:.2f}s "
                   f"({result['events'] / result['seconds']:,.0f}/s)")

    def _sink_env(self, name: str, bootstrap: str, prefix: str) -> tuple[dict[str, str], str]:
        data = self.tmp / name
        data.mkdir(parents=True, exist_ok=True)
        dsn = f"chdb://{data / 'db'}"
        # Identity resolution off: the features and triggers workers read the raw inputs of the backlog (with it on
        # they would read the identity stage's identified-* topics; the identity stage is measured on its own).
        return {"JOURNEY_KAFKA_BOOTSTRAP": bootstrap, "JOURNEY_CLICKHOUSE_DSN": dsn, "JOURNEY_DATA_DIR": str(data),
                "JOURNEY_GROUP_PREFIX": prefix, "JOURNEY_SETTINGS": "", "JOURNEY_IDENTITY_RESOLUTION": "false",
                "JOURNEY_TOPIC_PARTITIONS": str(PARTITIONS)}, dsn

    def backlog_worker(self, stage: str, args: list[str], env: dict[str, str], group: str, broker: EmbeddedBroker,
                       ends: Offsets, spy_out: Path | None = None) -> BacklogRun:
        """Run a worker over the pre-produced backlog until its group has committed all of ``ends``.

        Measured from the group's first commit (after start and join); with ``spy_out``, py-spy
        is attached to the worker from then on. The worker is stopped with SIGTERM at the end.
        """
        progress = GroupProgress({"bootstrap.servers": broker.bootstrap}, group)
        total = sum(ends.values())
        spy: Child | None = None
        worker = self.child(stage, args, env)
        say(stage, f"started `python -m {' '.join(args[2:])}` (pid {worker.pid}), waiting for its group to commit")
        try:
            def committed() -> int:
                found = progress.committed(list(ends), timeout=10)
                return sum(min(found.get(tp, 0), end) for tp, end in ends.items())

            def first_commit() -> tuple[float, int] | None:
                worker.check_alive()
                done = committed()
                return (time.time(), done) if done > 0 else None

            t0, done0 = wait_until(stage, "the worker's first commit (group join)", first_commit, JOIN_TIMEOUT, POLL)
            cpu0 = (worker.sample() or ProcSample(0.0, 0.0)).cpu_seconds
            broker0, busy0 = broker_cpu(broker), others_busy()
            if spy_out is not None:
                spy = self.child(f"{stage}-pyspy", [str(Path(PYTHON).parent / "py-spy"), "record", "--pid",
                                                    str(worker.pid), "--idle", "--threads", "--function",
                                                    "--format", "raw", "--rate", "100", "-o", str(spy_out)])
            say(stage, f"joined after {t0 - worker.started:.1f}s; {done0:,} committed")
            t_end = self._follow(stage, worker, committed, total)
            sampled = worker.sample()
            broker_seconds, busy = broker_cpu(broker) - broker0, others_busy() - busy0
            if spy is not None:
                busy -= (spy.sample() or ProcSample(0.0, 0.0)).cpu_seconds
                spy.stop(signal.SIGINT, 30)
            code = worker.stop(signal.SIGTERM, 60)
            if code not in (0, -signal.SIGTERM):
                self.results.notes.append(f"{stage}: the worker exited with code {code} after SIGTERM")
        finally:
            progress.close()
        assert sampled is not None
        run = BacklogRun(worker, t0, done0, t_end, total, sampled, cpu0, broker_seconds, busy)
        say(stage, f"all {total:,} committed: {run.steady_rate():,.0f} events/s steady, "
                   f"{total / (t_end - worker.started):,.0f} events/s including start and join; "
                   f"peak RSS {sampled.peak_rss_mb:.0f} MB")
        return run

    def backlog_rate(self, key: str, label: str, processes: str, run: BacklogRun) -> report.Rate:
        """Record a backlog run's steady rate under ``key`` (and its sustained rate, see ``_tail_note``)."""
        seconds = run.t_end - run.t0
        cpu = run.sampled.cpu_seconds - run.cpu0
        self.results.rates[key] = report.Rate(
            label, run.total - run.done0, seconds, processes, run.sampled.peak_rss_mb, cpu,
            broker_cpu_seconds=run.broker_seconds, other_cores=other_load(run.busy, cpu + run.broker_seconds, seconds))
        self._tail_note(key, run.t0, run.done0, run.total)
        return self.results.rates[key]

    def sink_backlog(self, stage: str, broker: EmbeddedBroker, ends: Offsets, profile: bool = False) -> None:
        """The real sink over the pre-produced backlog; optionally with py-spy attached after the join."""
        prefix = f"bench-{stage}"
        env, dsn = self._sink_env(stage, broker.bootstrap, prefix)
        spy_out = self.tmp / f"{stage}.pyspy.txt"
        run = self.backlog_worker(stage, [PYTHON, "-m", "streams.cli", "sink"], env, f"{prefix}-sink", broker, ends,
                                  spy_out if profile else None)
        label = "sink under py-spy, backlog (steady)" if profile else "sink `journey sink`, backlog (steady)"
        self.backlog_rate("profiled" if profile else "sink", label, "1 (sink)", run)
        if not profile:
            self.results.rates["sink_whole"] = report.Rate(
                "sink, backlog, whole (start + join + ingest)", run.total, run.t_end - run.worker.started, "1 (sink)",
                run.sampled.peak_rss_mb, run.sampled.cpu_seconds)
        self.verify(stage, dsn)
        if profile and spy_out.exists():
            self.results.profile = summarise(spy_out)
            top = self.results.profile.buckets.most_common(4)
            say(stage, "py-spy: " + ", ".join(f"{k} {self.results.profile.share(n):.0f}%" for k, n in top))
        elif profile:
            self.results.notes.append(f"py-spy wrote no profile; see {self.tmp / (stage + '-pyspy.log')}")

    def _tail_note(self, key: str, t0: float, done0: int, total: int) -> None:
        """Record the sustained rate: up to the last commit before the final one.

        The final batch is partial; under ``sink_min_batch_rows`` it is flushed only after
        ``sink_batch_seconds`` (1 s by default): a latency setting, not a throughput limit, that
        weighs on short runs.
        """
        before = [(t, n) for t, n in self.series if done0 < n < total]
        rate = self.results.rates[key]
        if not before or before[-1][0] <= t0:
            return
        t, n = before[-1]
        sustained = (n - done0) / (t - t0)
        if sustained <= rate.per_second:
            # The sink commits a batch once its insert thread has stored it, so the commit before the final
            # partial batch can come as late as the final one (the wait overlapped that insert): the rate over
            # the whole window, wait included, is then the better figure, and a lower bound of the sustained one.
            say(key, f"the final partial batch's wait cost nothing measurable ({sustained:,.0f} events/s up to "
                     f"the commit before it, {rate.per_second:,.0f} over the whole window)")
            return
        rate.full_batches_rate = sustained
        say(key, f"{rate.full_batches_rate:,.0f} events/s sustained (up to the commit before the final partial batch)")

    def _follow(self, stage: str, child: Child, committed: Callable[[], int], total: int,
                done_when: Callable[[], bool] | None = None) -> float:
        """Poll committed offsets until ``total``; print progress; fail on a stall or a dead process."""
        last_print = last_change = time.monotonic()
        last = -1
        self.series = []
        while True:
            child.check_alive()
            done = committed()
            now = time.monotonic()
            if done >= total and (done_when is None or done_when()):
                self.series.append((time.time(), done))
                return time.time()
            if done != last:
                last, last_change = done, now
                self.series.append((time.time(), done))
            elif now - last_change > STALL_TIMEOUT:
                raise BenchError(f"{stage}: no progress for {STALL_TIMEOUT:.0f}s at {done:,}/{total:,} committed\n"
                                 f"{child.tail()}")
            if now - last_print >= PRINT_EVERY:
                last_print = now
                sampled = child.sample()
                say(stage, f"committed {done:,}/{total:,}" + (f", RSS peak {sampled.peak_rss_mb:.0f} MB"
                                                              if sampled else ""))
            time.sleep(POLL)

    def verify(self, stage: str, dsn: str) -> None:
        """Count what landed in chDB (in a separate process: chDB allows one database path per process)."""
        out = self.tmp / f"{stage}-count.json"
        counted = self.child(f"{stage}-count", [PYTHON, "-m", "tests.bench.stages", "count", "--dsn", dsn,
                                                "--out", str(out)])
        if counted.wait(timeout=120) != 0:
            raise BenchError(f"{stage}: counting rows failed\n{counted.tail()}")
        found = orjson.loads(out.read_bytes())
        w = self.w
        problems = []
        for topic, info in found["tables"].items():
            expected = w.valid.get(topic, 0)
            if info["rows"] != expected:
                kind = "lost" if info["rows"] < expected else "duplicated"
                problems.append(f"{info['table']}: {info['rows']:,} rows, expected {expected:,} ({kind})")
            if info["distinct_ids"] != info["rows"]:
                problems.append(f"{info['table']}: {info['rows'] - info['distinct_ids']:,} duplicate event ids")
            for event_type, n in info["types"].items():
                if w.types.get(event_type) != n:
                    problems.append(f"{info['table']}: {n:,} {event_type}, expected {w.types.get(event_type, 0):,}")
        letters = found["dead_letters"]
        if letters["rows"] != w.total_invalid:
            problems.append(f"dead_letters: {letters['rows']:,} rows, expected {w.total_invalid:,}")
        if letters["distinct_ids"] != letters["rows"]:
            problems.append(f"dead_letters: {letters['rows'] - letters['distinct_ids']} duplicate ids")
        if letters["by_topic"] != {t: n for t, n in w.invalid.items() if n}:
            problems.append(f"dead letters per topic {letters['by_topic']} != {dict(w.invalid)}")
        if found["rollup_events"] != w.total_valid:
            problems.append(f"events_per_minute rollup sums to {found['rollup_events']:,}, expected {w.total_valid:,}")
        self.check(f"{stage} (chDB)", problems)

    def faust(self, stage: str, module: str, broker: EmbeddedBroker) -> None:
        """A faust baseline worker over the backlog, measured by the agent's own progress file."""
        w = self.w
        label = ("naive faust: per event, contract + Table" if stage == "naive"
                 else "faust ceiling: take(2000), decode only")
        expected_invalid = w.total_invalid if stage == "naive" else w.invalid_kinds["malformed_json"]
        self.progress_stage(stage, [PYTHON, "-m", module, "worker", "-l", "info"], {}, label, "1 (faust worker)",
                            broker, expected_invalid)

    def progress_stage(self, stage: str, args: list[str], env: dict[str, str], label: str, processes: str,
                       broker: EmbeddedBroker, expected_invalid: int | None = None, limit: int | None = None) -> None:
        """A baseline worker over the backlog, timed by the progress file it rewrites (``progress_file``).

        ``limit``: stop once that many records are handled (a slow baseline's steady rate over a prefix).
        """
        w = self.w
        total = min(limit or w.total, w.total)
        progress_file = self.tmp / f"{stage}.progress.json"
        env = {"BENCH_BOOTSTRAP": broker.bootstrap, "BENCH_APP_ID": f"bench-{stage}", "BENCH_TOTAL": str(w.total),
               "BENCH_PROGRESS": str(progress_file), "BENCH_DATADIR": str(self.tmp / f"{stage}-data"),
               "PYTHONPATH": str(ROOT), **env}
        worker = self.child(stage, args, env)
        say(stage, f"started `{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(args))}` "
                   f"(pid {worker.pid})")

        def read() -> dict[str, float] | None:
            worker.check_alive()
            try:
                return orjson.loads(progress_file.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                return None

        first = wait_until(stage, "the agent's first event (start + group join)", read, JOIN_TIMEOUT, 0.2)
        cpu0 = (worker.sample() or ProcSample(0.0, 0.0)).cpu_seconds
        broker0, busy0, wall0 = broker_cpu(broker), others_busy(), time.monotonic()
        say(stage, f"first event after {first['first_time'] - worker.started:.1f}s")
        last_count, last_change, last_print = -1, time.monotonic(), time.monotonic()
        while True:
            state = read() or first
            now = time.monotonic()
            if state["count"] >= total:
                break
            if state["count"] != last_count:
                last_count, last_change = state["count"], now
            elif now - last_change > STALL_TIMEOUT:
                raise BenchError(f"{stage}: no progress for {STALL_TIMEOUT:.0f}s at {state['count']:,}/{total:,}"
                                 f"\n{worker.tail()}")
            if now - last_print >= PRINT_EVERY * 2.5:
                last_print = now
                rate = (state["count"] - state["first_count"]) / max(state["time"] - state["first_time"], 1e-9)
                say(stage, f"handled {int(state['count']):,}/{total:,} ({rate:,.0f} events/s so far)")
            time.sleep(0.2)
        if total == w.total:
            time.sleep(0.5)  # anything beyond the total would be a redelivery
        state = read() or state
        sampled = worker.sample()
        cpu = sampled.cpu_seconds if sampled else None
        broker_seconds, busy = broker_cpu(broker) - broker0, others_busy() - busy0
        wall = time.monotonic() - wall0
        worker.stop(signal.SIGTERM, 20)
        events = int(state["count"] - state["first_count"])
        seconds = state["time"] - state["first_time"]
        self.results.rates[stage] = report.Rate(label, events, seconds, processes,
                                                sampled.peak_rss_mb if sampled else None,
                                                cpu - cpu0 if cpu is not None else None,
                                                broker_cpu_seconds=broker_seconds,
                                                other_cores=other_load(busy, (cpu or 0.0) - cpu0 + broker_seconds,
                                                                       wall))
        problems = []
        if total == w.total and state["count"] != w.total:
            problems.append(f"handled {int(state['count']):,} records, expected {w.total:,}")
        if total < w.total and state["count"] < total:
            problems.append(f"handled {int(state['count']):,} records, expected at least {total:,}")
        if expected_invalid is not None and state["invalid"] != expected_invalid:
            problems.append(f"{int(state['invalid']):,} invalid, expected {expected_invalid:,}")
        self.check(stage, problems)
        say(stage, f"{events:,} events in {seconds:.2f}s = {events / seconds:,.0f} events/s")

    def live(self) -> None:
        """Producer and sink together on a fresh broker: replay -> ClickHouse, one process per stage."""
        stage = "live"
        broker = self.broker("broker-live")
        env, dsn = self._sink_env(stage, broker.bootstrap, "bench-live")
        sink = self.child(stage, [PYTHON, "-m", "streams.cli", "sink"], env)

        def assigned() -> bool | None:
            sink.check_alive()
            return True if "assigned" in sink.log_path.read_text(errors="replace") else None

        wait_until(stage, "the sink's partition assignment (group join)", assigned, JOIN_TIMEOUT, POLL)
        say(stage, f"sink joined after {time.time() - sink.started:.1f}s; starting the producer")
        progress = GroupProgress({"bootstrap.servers": broker.bootstrap}, "bench-live-sink")
        partitions = [(t, p) for t in self.w.topics for p in range(PARTITIONS)]
        producer, out = self.produce("live_produce", broker.bootstrap, wait=False)
        cpu0 = (sink.sample() or ProcSample(0.0, 0.0)).cpu_seconds
        broker0, busy0, wall0 = broker_cpu(broker), others_busy(), time.monotonic()
        try:
            def committed() -> int:
                if not producer.alive() and producer.proc.returncode != 0:
                    raise BenchError(f"live_produce: producer exited with {producer.proc.returncode}\n"
                                     f"{producer.tail()}")
                return sum(progress.committed(partitions, timeout=10).values())

            t_end = self._follow(stage, sink, committed, self.w.total, done_when=lambda: not producer.alive())
            sampled = sink.sample()
            broker_seconds, busy = broker_cpu(broker) - broker0, others_busy() - busy0
            wall = time.monotonic() - wall0
            result, ends = self.finish_produce("live_produce", producer, out)
            if progress.remaining(ends):
                raise BenchError(f"{stage}: committed offsets do not match the producer's end offsets")
        finally:
            progress.close()
        sink.stop(signal.SIGTERM, 60)
        assert sampled is not None
        first_send = float(result["first_send"])  # type: ignore[arg-type]
        self.results.rates[stage] = report.Rate(
            "live replay -> ClickHouse (producer + sink together)", self.w.total, t_end - first_send,
            "2 (producer, sink)", sampled.peak_rss_mb, sampled.cpu_seconds - cpu0, broker_cpu_seconds=broker_seconds,
            other_cores=other_load(busy, sampled.cpu_seconds - cpu0 + broker_seconds
                                   + float(result["process_cpu"]), wall))  # type: ignore[arg-type]
        say(stage, f"{self.w.total:,} events from first send to all committed in {t_end - first_send:.2f}s "
                   f"= {self.w.total / (t_end - first_send):,.0f} events/s")
        self._tail_note(stage, first_send, 0, self.w.total)
        self.verify(stage, dsn)
        broker.stop()

    def scoring(self) -> None:
        """Predictions/s and labels learned/s of the scoring stage, as ratios to bare River (tests/bench/scoring.py)."""
        import subprocess

        out = self.tmp / "scoring.json"
        say("scoring", "predictions and labels learned per second, against bare River in the same process")
        subprocess.run([PYTHON, "-m", "tests.bench.scoring", "--out", str(out)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        r = orjson.loads(out.read_bytes())
        self.results.notes.append(
            f"scoring: {r['predictions_per_s']:,.0f} predictions/s ({r['predict_ratio']:.2f} x bare River "
            f"predict_proba_one, {r['bare_river_predict_per_s']:,.0f}/s); {r['labels_learned_per_s']:,.0f} labels "
            f"learned/s ({r['learn_ratio']:.2f} x bare River learn_one, {r['bare_river_learn_per_s']:,.0f}/s), "
            "one process")

    def holdout(self) -> None:
        """The purchases-only churn benchmark: latest churn score against a holdout (tests/bench/holdout.py)."""
        import subprocess

        out = self.tmp / "holdout.jsonl"
        say("holdout", "purchases-only churn: latest score at the cutoff against the holdout, vs RFM references")
        subprocess.run([PYTHON, "-m", "tests.bench.holdout", "--out", str(out)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        for line in out.read_text().splitlines():
            r = orjson.loads(line)
            cal = r["calibration"]
            self.results.notes.append(
                f"holdout churn, {r['dataset']}: online ROC AUC {r['online']['estimate']:.4f}, recency "
                f"{r['recency']['estimate']:.4f}, RFM logistic {r['rfm_logistic']['estimate']:.4f}; Brier "
                f"{cal['brier']:.4f} vs base rate {cal['brier_base_rate']:.4f}")

    def dashboard(self) -> None:
        """p50/p95 of every dashboard query over 1M events in a fresh chDB (tests/bench/dashboard_queries.py)."""
        import subprocess

        out = self.tmp / "dashboard.json"
        events, repeat = self.args.dashboard_events, self.args.dashboard_repeat
        say("dashboard", f"{events:,} events into a fresh chDB through the sink's path, then each dashboard query "
                         f"{repeat} times")
        done = subprocess.run([PYTHON, "-m", "tests.bench.dashboard_queries", "--out", str(out), "--events",
                               str(events), "--repeat", str(repeat), "--seed", str(self.args.seed), "--db",
                               str(self.tmp / "dashboard-db")], cwd=ROOT, stdout=subprocess.DEVNULL)
        if done.returncode != 0:
            raise BenchError(f"dashboard: exited with {done.returncode}")
        r = self.results.dashboard = orjson.loads(out.read_bytes())
        for key, q in r["queries"].items():
            say("dashboard", f"{key:<16} p50 {q['p50_ms']:7.1f} ms  p95 {q['p95_ms']:7.1f} ms  max {q['max_ms']:7.1f}")
        say("dashboard", f"SELECT 1 p95 {r['baseline_select_1']['p95_ms']:.2f} ms; a page refresh p50 "
                         f"{r['refresh_ms']['p50_ms']:.0f} ms")

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> int:
        say("bench", f"temp dir {self.tmp}; {'quick' if self.args.quick else 'full'} run, {self.args.events:,} events")
        self.results.machine = report.machine_info()
        deadline = time.monotonic() + self.args.wait_calm
        while True:
            busy0, wall0 = others_busy(), time.monotonic()
            time.sleep(2.0)
            idle_load = other_load(others_busy() - busy0, 0.0, time.monotonic() - wall0) or 0.0
            if idle_load <= CALM or time.monotonic() > deadline:
                break
            say("bench", f"other processes use {idle_load:.2f} cores; waiting for a calmer machine")
        self.results.machine["other load before the run (cores, 2 s)"] = f"{idle_load:.2f}"
        if idle_load > CALM:
            say("bench", f"WARNING: other processes already use {idle_load:.2f} cores: numbers will be noisy")
        began = time.monotonic()
        if self.args.only_dashboard:
            self.dashboard()
            say("bench", f"done in {time.monotonic() - began:.0f}s")
            return 0
        self.build_workload()
        if self.args.only_features:
            broker = self.broker("broker")
            _, ends = self.finish_produce("produce", *self.produce("produce", broker.bootstrap, wait=False), broker)
            features.run(self, broker, ends)
            broker.stop()
            say("bench", f"done in {time.monotonic() - began:.0f}s")
            return 0
        if self.args.only_triggers:
            triggers.run(self)
            say("bench", f"done in {time.monotonic() - began:.0f}s")
            return 0
        if self.args.only_identity:
            broker = self.broker("broker")
            _, ends = self.finish_produce("produce", *self.produce("produce", broker.bootstrap, wait=False), broker)
            features.ours(self, broker, ends)
            identity.run(self, broker, ends)
            broker.stop()
            say("bench", f"done in {time.monotonic() - began:.0f}s")
            return 0
        self.hotpath()
        self.scoring()
        self.holdout()
        broker = self.broker("broker")
        _, ends = self.finish_produce("produce", *self.produce("produce", broker.bootstrap, wait=False), broker)
        self.consume_only(broker)
        self.sink_backlog("sink", broker, ends)
        if self.args.profile:
            if (Path(PYTHON).parent / "py-spy").exists():
                self.sink_backlog("profiled", broker, ends, profile=True)
            else:
                self.results.notes.append("py-spy is not installed in the venv: no profile (pip install py-spy)")
        if self.args.faust:
            self.faust("naive", "tests.bench.faust_naive", broker)
            self.faust("ceiling", "tests.bench.faust_ceiling", broker)
        if self.args.features:
            features.run(self, broker, ends)
        if self.args.identity:
            identity.run(self, broker, ends)
        broker.stop()
        if self.args.triggers:
            triggers.run(self)
        self.live()
        if self.args.dashboard:
            self.dashboard()
        say("bench", f"done in {time.monotonic() - began:.0f}s")
        return 0


def others_busy() -> float:
    """Machine busy CPU seconds minus this harness's own (its polling is not load from elsewhere)."""
    return system_busy() - time.process_time()


def other_load(busy: float, ours: float, wall: float) -> float | None:
    """Cores used by everything else during a window: machine busy time minus our processes', per second."""
    return max(busy - ours, 0.0) / wall if wall > 0 else None


def broker_cpu(broker: EmbeddedBroker) -> float:
    """CPU seconds the broker process has used so far (0 if it cannot be read)."""
    found = sample(broker.process.pid) if broker.process is not None else None
    return found.cpu_seconds if found else 0.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help=f"records to replay (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--quick", action="store_true", help=f"a short run: {QUICK_EVENTS:,} records")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="where to write the report")
    parser.add_argument("--no-faust", dest="faust", action="store_false", help="skip the faust baselines")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the py-spy passes")
    parser.add_argument("--no-features", dest="features", action="store_false",
                        help="skip the features stage (ours, faust, Quix Streams, memory)")
    parser.add_argument("--only-features", action="store_true", help="only the features stage (and the produce it "
                        "reads from)")
    parser.add_argument("--no-identity", dest="identity", action="store_false",
                        help="skip the identity stage (`journey identity-stage` over the backlog)")
    parser.add_argument("--only-identity", action="store_true", help="only the identity stage and, for its ratio, "
                        "`journey features` over the same backlog (and the produce they read from)")
    parser.add_argument("--no-dashboard", dest="dashboard", action="store_false",
                        help="skip the dashboard queries stage")
    parser.add_argument("--only-dashboard", action="store_true", help="only the dashboard queries stage; its "
                        "section of --output is replaced, the rest of the file kept")
    parser.add_argument("--dashboard-events", type=int, default=dashboard_queries.EVENTS,
                        help=f"events loaded for the dashboard stage (default {dashboard_queries.EVENTS:,})")
    parser.add_argument("--dashboard-repeat", type=int, default=dashboard_queries.REPEAT,
                        help=f"runs of each dashboard query (default {dashboard_queries.REPEAT})")
    parser.add_argument("--no-triggers", dest="triggers", action="store_false",
                        help="skip the triggers stage (event-to-trigger latency, triggers/s)")
    parser.add_argument("--only-triggers", action="store_true", help="only the triggers stage (it produces its own "
                        "backlog on a fresh broker)")
    parser.add_argument("--triggers-rate", type=float, nargs="+", default=list(triggers.RATES),
                        metavar="EVENTS_PER_S", help="the triggers stage's steady live loads, one run each (default "
                        f"{' '.join(map(str, triggers.RATES))})")
    parser.add_argument("--triggers-seconds", type=float, default=triggers.SECONDS, metavar="SECONDS",
                        help=f"how long the live load runs (default {triggers.SECONDS:.0f}; "
                             f"{triggers.QUICK_SECONDS:.0f} with --quick)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    parser.add_argument("--wait-calm", type=float, default=0.0, metavar="SECONDS",
                        help=f"wait up to this long for other processes to use under {CALM} cores first")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = QUICK_EVENTS if args.quick else DEFAULT_EVENTS
    if args.events < MIN_EVENTS:
        parser.error(f"--events must be at least {MIN_EVENTS:,} (a few sink batches to measure)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    bench = Bench(args)
    try:
        code = bench.run()
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr, flush=True)
        bench.args.keep = True
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            bench.cleanup()
    results = bench.results
    if args.only_dashboard:
        assert results.dashboard is not None
        section = dashboard_queries.markdown(results.dashboard)
        print("\n".join(section))
        existing = args.output.read_text() if args.output.exists() else "# Benchmarks\n"
        args.output.write_text(dashboard_queries.splice(existing, section))
        print(f"\nupdated the dashboard section of {args.output}")
        return code
    print()
    print(report.text_table(results))
    print()
    for section in (features_report.text(results), identity_report.text(results), triggers_report.text(results)):
        if section:
            print(section)
            print()
    more_targets = features_report.targets(results) if args.features else []
    latency_target = triggers_report.target(results)
    if latency_target is not None:
        more_targets.append(latency_target)
    for target, measured, verdict in [*report.targets(results), *more_targets]:
        print(f"{verdict:<5} {target}: {measured}")
    for line in report.findings(results):
        print(f"  - {line}")
    dashboard = dashboard_queries.markdown(results.dashboard) if results.dashboard else []
    args.output.write_text(report.markdown(results, [*features_report.markdown(results),
                                                     *identity_report.markdown(results),
                                                     *triggers_report.markdown(results), *dashboard], more_targets))
    print(f"\nwrote {args.output}")
    if not results.data_ok:
        bad = [stage for stage, problems in results.checks.items() if problems]
        print(f"DATA LOST OR DUPLICATED in: {', '.join(bad)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
