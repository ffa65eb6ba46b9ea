"""The features stage of ``make bench``: ``journey features`` against faust and Quix Streams on the same job.

Every contender reads the same pre-produced backlog (its own consumer group) and runs the
same ``FeaturesProcessor`` (validation, every feature, segments, the profile):

- ours: ``python -m streams.cli features`` (``streams/stateful.py``: librdkafka batches,
  state in a dict, one changelog record and one profile per changed customer per flush),
  timed by its group's committed offsets over the whole backlog;
- faust, naive and batched: ``streams/faust_features.py`` (a faust table, per-event writes
  or ``take_events`` batches with coalesced writes);
- Quix Streams: ``tests/bench/quix_features.py`` from ``.venv-quix`` (RocksDB state,
  changelog on), with and without its per-record profile output.

Quix Streams, the baseline of the target, runs over the whole backlog like ours (a customer's
state grows along the backlog, so a prefix would flatter whoever is timed on it); the faust
baselines are timed by their progress files over the first ``BASELINE_SAMPLE`` records (their
steady rate; a whole pass would take minutes at their speed). Then, in-process, the memory
the profiles take per 100k customers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tests.bench.procs import PYTHON, ROOT, BenchError
from tests.bench.profile import summarise

if TYPE_CHECKING:
    from streams.broker import EmbeddedBroker
    from tests.bench.run import Bench, Offsets
    from tests.bench.workload import Workload

#: The faust baselines are timed over this many records (after their first one).
BASELINE_SAMPLE = 40_000
#: Quix Streams lives in its own virtualenv (it pins an older confluent-kafka); ``make bench`` creates it.
QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"
#: Customers for the memory measurement, and records per customer.
MEMORY_CUSTOMERS = 100_000
MEMORY_EVENTS = 600_000
#: The stages of ``journey features`` for the py-spy split; the innermost match of a stack wins.
FEATURE_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("validate (schemas.validation.validate)", ("validate",)),
    ("apply the event to the features (FeatureEngine.apply)", ("FeatureEngine.apply",)),
    ("late-event side output", ("FeaturesProcessor.late_record",)),
    ("profile: feature values, segments, JSON (emit)", ("FeaturesProcessor.emit",)),
    ("flush: pickle state to the changelog, produce, commit", ("StatefulWorker.flush",)),
    ("per-record loop (StatefulWorker.handle)", ("StatefulWorker.handle",)),
    ("consume() from librdkafka (incl. waiting for data)", ("BatchWorker.poll",)),
)
#: Result keys of this stage, in table order.
ROWS = ("features", "features_batched", "features_naive", "ceiling", "features_quix", "features_quix_noemit")


def run(bench: Bench, broker: EmbeddedBroker, ends: Offsets) -> None:
    """All features measurements of one bench run (results land in ``bench.results``)."""
    ours(bench, broker, ends)
    if bench.args.profile:
        if (Path(PYTHON).parent / "py-spy").exists():
            ours(bench, broker, ends, profile=True)  # its own group prefix, so its own changelog: a fresh start
        else:
            bench.results.notes.append("py-spy is not installed in the venv: no features profile")
    if bench.args.faust:
        for variant in ("batched", "naive"):
            bench.progress_stage(
                f"features_{variant}", [PYTHON, "-m", "tests.bench.faust_features_bench", "worker", "-l", "info"],
                {"BENCH_VARIANT": variant, **_journey_env(bench, f"features_{variant}", broker.bootstrap)},
                f"faust {variant}: streams/faust_features.py", "1 (faust worker)", broker, limit=BASELINE_SAMPLE)
    if QUIX_PYTHON.exists():
        for emit, key in (("1", "features_quix"), ("0", "features_quix_noemit")):
            label = "Quix Streams: RocksDB state, profile per record" if emit == "1" else \
                "Quix Streams without output (its ceiling)"
            bench.progress_stage(key, [str(QUIX_PYTHON), "-m", "tests.bench.quix_features"],
                                 {"BENCH_GROUP": f"bench-{key}", "BENCH_QUIX_EMIT": emit}, label,
                                 "1 (Quix app)", broker)
    else:
        bench.results.notes.append(f"{QUIX_PYTHON} is missing (make bench creates it): no Quix Streams baseline")
    memory(bench)


def _journey_env(bench: Bench, stage: str, bootstrap: str) -> dict[str, str]:
    env, _ = bench._sink_env(stage, bootstrap, f"bench-{stage}")
    return env


def ours(bench: Bench, broker: EmbeddedBroker, ends: Offsets, profile: bool = False) -> None:
    """``journey features`` over the whole backlog; checks it consumed every record once and skipped the bad ones."""
    stage = "features_profiled" if profile else "features"
    env = _journey_env(bench, stage, broker.bootstrap)
    spy_out = bench.tmp / f"{stage}.pyspy.txt"
    run_ = bench.backlog_worker(stage, [PYTHON, "-m", "streams.cli", "features"], env, f"bench-{stage}-features",
                                broker, ends, spy_out if profile else None)
    label = "features under py-spy" if profile else "ours: `journey features` (streams/stateful.py)"
    bench.backlog_rate(stage, label, "1 (worker)", run_)
    stats = _worker_stats(run_.worker.log_path.read_text(errors="replace"))
    bench.check(stage, worker_problems(stats, bench.w))
    if stats is not None:
        bench.results.features_stats[stage] = stats
    if profile:
        if not spy_out.exists():
            raise BenchError(f"{stage}: py-spy wrote no profile")
        bench.results.features_profile = summarise(spy_out, FEATURE_BUCKETS)


def worker_problems(stats: dict[str, Any] | None, w: Workload) -> list[str]:
    """What is wrong with a stateful worker's pass over the whole workload, from its stop-line counters."""
    if stats is None:
        return ["the worker logged no final stats"]
    problems = []
    if stats["consumed"] != w.total:
        problems.append(f"consumed {stats['consumed']:,} records, expected {w.total:,}")
    if stats["skipped_redelivered"]:
        problems.append(f"{stats['skipped_redelivered']:,} records redelivered")
    if stats["invalid"] != w.total_invalid:
        problems.append(f"skipped {stats['invalid']:,} invalid records, expected {w.total_invalid:,}")
    return problems


_STOPPED = re.compile(r"stopped: WorkerStats\((?P<fields>.*)\) \(invalid input skipped: (?P<invalid>\d+)\)")


def _worker_stats(log: str) -> dict[str, int] | None:
    """The counters ``journey features`` logs when it stops (its integer fields, and the invalid records skipped)."""
    found = _STOPPED.findall(log)
    if not found:
        return None
    fields, invalid = found[-1]
    stats = int_fields(fields)
    stats["invalid"] = int(invalid)
    return stats


def int_fields(text: str) -> dict[str, int]:
    """The top-level integer fields of a dataclass repr (``consumed=12, ...``; counters inside are skipped)."""
    return {name: int(value) for name, value in re.findall(r"(?<![\w'])(\w+)=(\d+)(?=[,)]|$)", text)}


def memory(bench: Bench) -> None:
    """Profiles of ``MEMORY_CUSTOMERS`` customers in one process: resident memory and pickled state per customer."""
    stage = "features_memory"
    out = bench.tmp / f"{stage}.json"
    started = bench.child(stage, [PYTHON, "-m", "tests.bench.stages", "features-memory", "--customers",
                                  str(MEMORY_CUSTOMERS), "--events", str(MEMORY_EVENTS), "--out", str(out)])
    if started.wait(timeout=900) != 0:
        raise BenchError(f"{stage}: exited with {started.proc.returncode}\n{started.tail()}")
    bench.results.features_memory = orjson.loads(out.read_bytes())
    found = bench.results.features_memory
    expected = found["distinct_customers"]
    # The workload always holds one invalid record; its customer may have no other.
    bench.check(stage, [] if expected - found["invalid"] <= found["customers"] <= expected
                else [f"{found['customers']:,} customers held, expected {expected:,} "
                      f"({found['invalid']} records refused)"])
