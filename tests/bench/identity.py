"""The identity stage of ``make bench``: ``journey identity-stage`` over the features stage's backlog, same run.

The stage reads the same pre-produced backlog as the features stage (its own consumer group), validates
each record, resolves its subject through the identity graph and re-produces it to ``identified-<topic>``
keyed by the profile, with the changed components on its changelog at every flush. The bench workload
names every event by a known ``customer_id`` (no anonymous ids, no other identifiers), so what is measured
is pass-through resolution of known customers: one new single-node component per customer, then one
lookup per event; no links or merges. Timed like ``journey features`` (its group's committed offsets,
first commit to last), so its events/s divided by the features stage's is the ratio of the two stages
on the same machine at the same time. Checked: every record consumed once, the invalid ones skipped,
every valid one on ``identified-*`` (end offsets), nothing re-keyed, no identity record.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from schemas.identity import identified
from schemas.registry import IDENTITY_MERGES
from streams.progress import end_offsets_by_eof
from tests.bench.features import int_fields
from tests.bench.procs import PYTHON

if TYPE_CHECKING:
    from streams.broker import EmbeddedBroker
    from tests.bench.run import Bench, Offsets
    from tests.bench.workload import Workload

KEY = "identity"
LABEL = "identity stage `journey identity-stage`: pass-through resolution of known customers"
_STOPPED = re.compile(r"stopped: IdentityStats\((?P<fields>.*)\)\s*$", re.MULTILINE)


def run(bench: Bench, broker: EmbeddedBroker, ends: Offsets) -> None:
    """``journey identity-stage`` over the whole backlog; its rate lands in ``bench.results.rates["identity"]``."""
    env, _ = bench._sink_env(KEY, broker.bootstrap, f"bench-{KEY}")
    run_ = bench.backlog_worker(KEY, [PYTHON, "-m", "streams.cli", "identity-stage"], env, f"bench-{KEY}-identity",
                                broker, ends)
    bench.backlog_rate(KEY, LABEL, "1 (worker)", run_)
    stats = stage_stats(run_.worker.log_path.read_text(errors="replace"))
    topics = sorted({topic for topic, _ in ends})
    produced = end_offsets_by_eof({"bootstrap.servers": broker.bootstrap},
                                  [*(identified(t) for t in topics), IDENTITY_MERGES])
    bench.check(KEY, problems(stats, produced, bench.w))


def stage_stats(log: str) -> dict[str, int] | None:
    """The integer counters ``journey identity-stage`` logs when it stops (``IdentityStats``)."""
    found = _STOPPED.findall(log)
    return int_fields(found[-1]) if found else None


def problems(stats: dict[str, Any] | None, produced: dict[tuple[str, int], int], w: Workload) -> list[str]:
    """What is wrong with the stage's pass over the whole workload (its counters, what it wrote)."""
    if stats is None:
        return ["the identity stage logged no final stats"]
    found = []
    expected = {"consumed": w.total, "invalid": w.total_invalid, "resolved": w.total_valid, "rekeyed": 0,
                "links": 0}
    found += [f"{name} {stats.get(name):,}, expected {n:,}" for name, n in expected.items() if stats.get(name) != n]
    for topic, n in w.valid.items():
        written = sum(offset for (t, _), offset in produced.items() if t == identified(topic))
        if written != n:
            found.append(f"{identified(topic)}: {written:,} records, expected {n:,}")
    records = sum(offset for (t, _), offset in produced.items() if t == IDENTITY_MERGES)
    if records:
        found.append(f"{IDENTITY_MERGES}: {records:,} records, expected none (known customers only)")
    return found
