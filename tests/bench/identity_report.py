"""The identity stage's part of BENCHMARKS.md: its events/s beside the features stage's, and the ratio."""

from __future__ import annotations

from tests.bench.features_report import _rate, console_table
from tests.bench.identity import KEY
from tests.bench.report import Rate, Results, _fmt, _md_table

HEADER = ["stage", "processes", "events", "seconds", "events/s", "x features stage (same run)", "wall us/event",
          "CPU us/event", "peak RSS MB", "other load (cores)"]


def ratio(results: Results) -> float | None:
    """The identity stage's events/s over the features stage's in the same run (None: one was not measured)."""
    identity, features = results.rates.get(KEY), results.rates.get("features")
    if identity is None or features is None or _rate(features) <= 0:
        return None
    return _rate(identity) / _rate(features)


def rows(results: Results) -> list[list[str]]:
    found = ratio(results)
    table = []
    for key in (KEY, "features"):
        rate: Rate | None = results.rates.get(key)
        if rate is None:
            continue
        times = "1.0x" if key == "features" else ("-" if found is None else f"{found:,.2f}x")
        table.append([rate.label, rate.processes, f"{rate.events:,}", f"{rate.seconds:,.2f}", _fmt(_rate(rate)),
                      times, _fmt(1e6 / _rate(rate), 1), _fmt(rate.cpu_us, 1), _fmt(rate.peak_rss_mb),
                      _fmt(rate.other_cores, 2)])
    return table if results.rates.get(KEY) else []


def text(results: Results) -> str:
    return console_table("Identity stage", HEADER, rows(results))


def markdown(results: Results) -> list[str]:
    """The "Identity stage" section (empty when the stage was skipped)."""
    body = rows(results)
    if not body:
        return []
    return [
        "## Identity stage against the features stage, same backlog, same run",
        "",
        "`python -m streams.cli identity-stage` reads the backlog the features stage reads (its own consumer group), "
        "validates each record, resolves its subject through the identity graph and re-produces it to "
        "`identified-<topic>` keyed by the profile, with the changed graph components on its changelog at each "
        "flush; timed like the features stage, from its group's first commit to the last. The bench workload names "
        "every event by a known `customer_id` (no anonymous ids, no other identifiers): this measures pass-through "
        "resolution of known customers (one single-node component per customer, then a lookup per event; no links "
        "or merges). The ratio is the identity stage's events/s over the features stage's in this run (the "
        "features stage here reads the raw inputs, identity resolution off).",
        "",
        _md_table(HEADER, body),
        "",
    ]
