"""The triggers stage's part of BENCHMARKS.md and of the console summary (tests/bench/triggers.py)."""

from __future__ import annotations

from typing import Any

from tests.bench.report import Results, _fmt, _md_table
from tests.bench.triggers import CART_SHARE, ECHO_EVERY, FIRST_ORDER_SHARE, NEGATIVE_CHAT_SHARE

LATENCY_HEADER = ["measured", "n", "p50 ms", "p99 ms", "max ms", "mean ms"]
RATE_HEADER = ["worker", "processes", "events", "seconds", "events/s", "triggers/s", "CPU us/event", "peak RSS MB",
               "other load (cores)"]


def _latency_row(label: str, found: dict[str, float] | None) -> list[str]:
    if not found:
        return [label, "0", "-", "-", "-", "-"]
    return [label, f"{found['n']:,}", f"{found['p50_ms']:,.1f}", f"{found['p99_ms']:,.1f}", f"{found['max_ms']:,.1f}",
            f"{found['mean_ms']:,.1f}"]


def latency_rows(live: dict[str, Any]) -> list[list[str]]:
    rows = [_latency_row("event -> trigger, every event-driven trigger", live["latency"])]
    rows += [_latency_row(f"event -> trigger, {kind}", found) for kind, found in live["latency_by_trigger"].items()]
    rows.append(_latency_row("baseline: broker produce -> consume round trip (echo topic)", live["echo"]))
    rows.append(_latency_row("cart_abandoned timer: arrival - deadline (wall clock)", live["timer_lateness"]))
    return rows


def rate_rows(results: Results) -> list[list[str]]:
    backlog = results.triggers.get("backlog") or {}
    rows = []
    for key in ("triggers", "triggers_features"):
        rate = results.rates.get(key)
        if rate is None:
            continue
        per_s = _fmt(backlog["triggers_per_s"]) if key == "triggers" and backlog else "-"
        rows.append([rate.label, rate.processes, f"{rate.events:,}", f"{rate.seconds:,.2f}", _fmt(rate.per_second),
                     per_s, _fmt(rate.cpu_us, 1), _fmt(rate.peak_rss_mb), _fmt(rate.other_cores, 2)])
    return rows


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in [header, *body]]
    lines.insert(1, "-" * len(lines[0]))
    return lines


#: The issue's target: event -> trigger p99 under this at TARGET_RATE events/s on the embedded broker.
TARGET_P99_MS = 100.0
TARGET_RATE = 5000


def lives(results: Results) -> list[dict[str, Any]]:
    """The live runs, one per rate (an older results file holds one run as a dict)."""
    live = results.triggers.get("live") or []
    return [live] if isinstance(live, dict) else list(live)


def target(results: Results) -> tuple[str, str, str] | None:
    """(target, measured, PASS/FAIL) of the event -> trigger p99 at TARGET_RATE, when that rate ran."""
    for live in lives(results):
        if live["latency"] and round(live["rate"], -2) >= TARGET_RATE:
            p99 = live["latency"]["p99_ms"]
            return (f"event -> trigger p99 < {TARGET_P99_MS:.0f} ms at {TARGET_RATE:,} events/s (embedded broker)",
                    f"p99 {p99:.1f} ms at {live['rate']:,.0f} events/s", "PASS" if p99 < TARGET_P99_MS else "FAIL")
    return None


def text(results: Results) -> str:
    runs, rates = lives(results), rate_rows(results)
    if not runs and not rates:
        return ""
    lines = ["Triggers stage"]
    for live in runs:
        lines += [f"live load: {live['events']:,} events at {live['rate']:,.0f}/s", *_table(LATENCY_HEADER,
                                                                                             latency_rows(live))]
    if rates:
        lines += _table(RATE_HEADER, rates)
    return "\n".join(lines)


def markdown(results: Results) -> list[str]:
    """The "Triggers stage" section (empty when the stage was skipped)."""
    runs, rates = lives(results), rate_rows(results)
    if not runs and not rates:
        return []
    parts = ["## Triggers stage: event-to-trigger latency and triggers/s", ""]
    for n, live in enumerate(runs):
        cpu = ", ".join(f"{name.rsplit('-', 1)[-1]} {seconds / live.get('window_seconds', live['send_seconds']):.2f}"
                        for name, seconds in live["worker_cpu_seconds"].items())
        expected = ", ".join(f"{n:,} {kind}" for kind, n in live["expected"].items())
        missing = sum(live["missing"].values())
        parts += [
            f"### Latency under a steady live load: {live['rate']:,.0f} events/s", "",
            f"A fresh embedded broker; `journey features` and `journey triggers` started and joined first, then one "
            f"load process (`python -m tests.bench.triggers load`) sent {live['events']:,} events at a steady "
            f"{live['rate']:,.0f} events/s for {live['send_seconds']:.1f} s, each with `event_time` = now (the "
            "trigger host follows the wall clock). The mix: "
            f"{FIRST_ORDER_SHARE:.0%} first orders of new customers (each fires `welcome` at once), "
            f"{NEGATIVE_CHAT_SHARE:.0%} strongly negative chat messages in new conversations (each fires "
            f"`unhappy_customer`, with the history summary), {CART_SHARE:.0%} adds to cart of ~5,000 browsing "
            "customers, the rest page and product views. A consumer thread of the load process reads `triggers` "
            "and notes each record's arrival; a trigger's latency is its arrival minus the send time of the event "
            f"it is anchored on (`source_event_id`). Expected {expected}; "
            + ("every one arrived, once." if not missing and not live["duplicates"] else
               f"{missing:,} never arrived and {live['duplicates']:,} arrived twice.")
            + f" Baseline in the same process and window: every {ECHO_EVERY}th event is echoed on a topic no "
            "worker reads, its produce -> consume round trip is the broker's own latency under this load. The "
            "bench's rules file sets the cart timer to 3 s and `live_delay_seconds = 0`, so wall-clock timers "
            "fire during the run; their row is arrival minus `fired_at` (the deadline).",
            "",
            _md_table(LATENCY_HEADER, latency_rows(live)),
            "",
            f"Triggers that arrived: {', '.join(f'{k} {n:,}' for k, n in sorted(live['triggers'].items()))}. "
            f"CPU over the load process's lifetime ({live.get('window_seconds', 0):.0f} s: send and settle), in "
            f"cores: {cpu}, broker {live.get('broker_cores', 0):.2f}, load process {live.get('load_cores', 0):.2f}; "
            f"other processes on the machine {_fmt(live.get('other_cores'), 2)}. The broker's own round trip "
            "(the baseline row) is part of every trigger's latency twice: the event to the worker, the trigger "
            "to its reader.",
            "",
        ]
        if n == len(runs) - 1:
            parts += [
                "The workers fetch with `fetch.wait.max.ms` 10 ms (`fetch_wait_max_ms`; the embedded broker "
                "does not answer a waiting fetch when data arrives: streams/kafka_options.py), consume in "
                "batches (`consume(batch_rows, 0.2 s)`: a batch waits up to 0.2 s to fill) and produce a "
                "trigger the moment the rule fires (the producer lingers 5 ms); offsets and the changelog follow "
                "at the next flush (`processor_flush_seconds`, 1 s), which does not delay the trigger. The reader "
                "waits 10 ms too.",
                "",
            ]
    if rates:
        backlog = results.triggers.get("backlog") or {}
        fired = ", ".join(f"{k} {n:,}" for k, n in sorted(backlog.get("fired", {}).items()))
        parts += [
            "### Throughput over a backlog, one process", "",
            "`python -m streams.cli triggers` over the benchmark workload pre-produced on a fresh broker (its own "
            "consumer group, the shipped rules), timed from its group's first commit to all input committed, like "
            "the sink. Triggers/s is the triggers it fired per event read (from its stop log: "
            f"{backlog.get('fired_total', 0):,} over {backlog.get('consumed', 0):,} records, {fired}) times its "
            "events/s: timers fire as the event-time watermark passes their deadlines. Baseline in the same run: "
            "`journey features` over the same backlog, the other stateful worker on the same host.",
            "",
            _md_table(RATE_HEADER, rates),
            "",
        ]
    return parts
