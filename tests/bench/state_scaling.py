"""The features worker's state at scale: memory, restart to ready, events/s, at 10k..1M customers.

``python -m tests.bench.state_scaling --customers 10000,100000,1000000`` runs, for each size, on
its own embedded broker (4 partitions) and data dir:

1. ``N x --events-per-customer`` product views, keyed by customer, pre-produced;
2. ``journey features`` (the CLI, a subprocess) from an empty disk over that backlog: events/s
   (from ready to every offset committed), resident memory (VmRSS at the end, VmHWM peak),
   bytes per customer (resident / N), the local stores' bytes on disk;
3. SIGTERM, restart: seconds from spawn to ``/readyz`` 200 and the changelog records the restore
   read (the log's "replayed after their checkpoints");
4. 10% more events (customers already seen), SIGKILL once about half of them are committed,
   restart: seconds to ready, records replayed, and that the rest is then processed.

The default cache (``state_cache_customers``) unless ``--cache``. Prints a Markdown table and
writes JSON (``--out``). Restart-to-ready includes the interpreter start and the group join
(about 3 s on the embedded broker: its joins take session.timeout.ms / 2).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from streams.broker import EmbeddedBroker
from streams.progress import GroupProgress
from streams.state_store import DEFAULT_CACHE_CUSTOMERS
from streams.topics import ensure_topics, topic_specs
from tests.bench.procs import PYTHON, BenchError, Child, sample

PARTITIONS = 4
PREFIX = "scale"
GROUP = f"{PREFIX}-features"
START_MS = 1_714_521_600_000  # 2024-05-01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def produce_views(bootstrap: str, customers: int, per_customer: int, first: int = 0,
                  customer_range: range | None = None) -> dict[tuple[str, int], int]:
    """Product views, ``per_customer`` for each customer of ``customer_range``; the end offsets acknowledged."""
    ends: dict[tuple[str, int], int] = {}

    def acked(err: Any, msg: Any) -> None:
        if err is not None:
            raise BenchError(f"produce failed: {err}")
        part = (msg.topic(), msg.partition())
        ends[part] = max(ends.get(part, 0), msg.offset() + 1)

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 1_000_000, "enable.idempotence": False})
    n = first
    for round_ in range(per_customer):
        for c in customer_range or range(customers):
            customer = f"c{c:07d}"
            value = orjson.dumps({"type": "product_view", "event_id": f"v{n:09d}", "customer_id": customer,
                                  "event_time": _iso(START_MS + n * 7 + round_), "product_id": f"p{c % 5000}",
                                  "category_id": f"k{c % 40}"})
            n += 1
            while True:
                try:
                    producer.produce("clickstream", value, customer.encode(), on_delivery=acked)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
    if producer.flush(300):
        raise BenchError("records not acknowledged")
    return ends


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    value = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmRSS", "VmHWM"))}
    return value["VmRSS"] / 1024, value["VmHWM"] / 1024


def cpu_seconds(pid: int) -> float:
    found = sample(pid)
    return found.cpu_seconds if found else 0.0


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Features:
    """``journey features`` as a subprocess of one bench size."""

    def __init__(self, bootstrap: str, data: Path, cache: int | None) -> None:
        self.data = data
        self.port = free_port()
        self.env = {"JOURNEY_KAFKA_BOOTSTRAP": bootstrap, "JOURNEY_DATA_DIR": str(data), "JOURNEY_SETTINGS": "",
                    "JOURNEY_GROUP_PREFIX": PREFIX, "JOURNEY_TOPIC_PARTITIONS": str(PARTITIONS),
                    "JOURNEY_METRICS_PORT": str(self.port), "JOURNEY_LOG_LEVEL": "INFO"}
        if cache is not None:
            self.env["JOURNEY_STATE_CACHE_CUSTOMERS"] = str(cache)
        self.child: Child | None = None
        self.runs = 0

    def start(self) -> float:
        """Spawn; seconds until /readyz answers 200 (following the process: fails only if it dies)."""
        self.runs += 1
        started = time.monotonic()
        self.child = Child("features", [PYTHON, "-m", "streams.cli", "features"],
                           self.data / f"features-{self.runs}.log", self.env)
        while not ready(self.port):
            self.child.check_alive()
            time.sleep(0.05)
        return time.monotonic() - started

    def replayed(self) -> int:
        """Changelog records the last start's restore read (its log line)."""
        text = (self.data / f"features-{self.runs}.log").read_text(errors="replace")
        found = re.findall(r"(\d+) changelog records replayed after their", text)
        return sum(map(int, found))

    def restore_seconds(self) -> float:
        """Seconds the last start's restore took (opening the stores and replaying: its log line)."""
        text = (self.data / f"features-{self.runs}.log").read_text(errors="replace")
        return sum(map(float, re.findall(r"restored \d+ keys of .* in ([0-9.]+)s: the local stores", text)))

    def stop(self, sig: int) -> None:
        assert self.child is not None
        self.child.stop(sig, timeout=600)


def wait_committed(bootstrap: str, ends: dict[tuple[str, int], int], features: Features,
                   until_remaining: int = 0) -> None:
    progress = GroupProgress({"bootstrap.servers": bootstrap}, GROUP)
    try:
        while progress.remaining(ends) > until_remaining:
            assert features.child is not None
            features.child.check_alive()
            time.sleep(0.2)
    finally:
        progress.close()


def merged(*ends: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for one in ends:
        for part, offset in one.items():
            out[part] = max(out.get(part, 0), offset)
    return out


def one_size(customers: int, per_customer: int, cache: int | None, root: Path) -> dict[str, Any]:
    data = root / f"n{customers}"
    data.mkdir(parents=True)
    with EmbeddedBroker(log_path=data / "broker.log") as broker:
        bootstrap = broker.bootstrap
        ensure_topics({"bootstrap.servers": bootstrap}, topic_specs(PARTITIONS, PREFIX))
        t = time.monotonic()
        ends = produce_views(bootstrap, customers, per_customer)
        print(f"  {customers:,}: produced {customers * per_customer:,} in {time.monotonic() - t:.0f}s", flush=True)
        features = Features(bootstrap, data, cache)
        first_ready = features.start()
        assert features.child is not None
        t, cpu0 = time.monotonic(), cpu_seconds(features.child.pid)
        wait_committed(bootstrap, ends, features)
        seconds, cpu = time.monotonic() - t, cpu_seconds(features.child.pid) - cpu0
        resident, peak = rss_mb(features.child.pid)
        features.stop(signal.SIGTERM)
        disk = sum(f.stat().st_size for f in (data / "state").rglob("*") if f.is_file())
        print(f"  {customers:,}: {customers * per_customer / seconds:,.0f} events/s "
              f"({customers * per_customer / cpu:,.0f} per CPU second), {resident:.0f} MB resident "
              f"(peak {peak:.0f}), {disk / 1e6:.0f} MB on disk", flush=True)

        term_ready = features.start()
        term_replayed, term_restore = features.replayed(), features.restore_seconds()
        assert features.child is not None
        resident_after, _ = rss_mb(features.child.pid)
        more = max(customers // 10, 1)
        extra = produce_views(bootstrap, customers, 1, first=customers * per_customer,
                              customer_range=range(0, customers, max(customers // more, 1)))
        total = merged(ends, extra)
        wait_committed(bootstrap, total, features, until_remaining=more // 2)
        features.stop(signal.SIGKILL)
        kill_ready = features.start()
        kill_replayed, kill_restore = features.replayed(), features.restore_seconds()
        wait_committed(bootstrap, total, features)
        features.stop(signal.SIGTERM)
        print(f"  {customers:,}: ready after SIGTERM {term_ready:.1f}s ({term_replayed:,} replayed in "
              f"{term_restore:.1f}s), after SIGKILL {kill_ready:.1f}s ({kill_replayed:,} replayed in "
              f"{kill_restore:.1f}s)", flush=True)
    events = customers * per_customer
    result = {"customers": customers, "events": events, "events_per_s": events / seconds,
              "events_per_cpu_s": events / cpu, "resident_mb": resident, "peak_mb": peak,
              "bytes_per_customer": resident * 2**20 / customers, "disk_mb": disk / 1e6,
              "first_ready_s": first_ready, "resident_after_restart_mb": resident_after,
              "sigterm_ready_s": term_ready, "sigterm_replayed": term_replayed, "sigterm_restore_s": term_restore,
              "sigkill_ready_s": kill_ready, "sigkill_replayed": kill_replayed, "sigkill_restore_s": kill_restore,
              "cache_customers": cache or DEFAULT_CACHE_CUSTOMERS}
    shutil.rmtree(data / "state", ignore_errors=True)
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| customers | events/s (per CPU s) | resident MB (peak) | bytes/customer | on disk MB "
             "| ready after SIGTERM s (records replayed, restore s) "
             "| ready after SIGKILL s (records replayed, restore s) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['customers']:,} | {r['events_per_s']:,.0f} ({r['events_per_cpu_s']:,.0f}) "
            f"| {r['resident_mb']:,.0f} ({r['peak_mb']:,.0f}) | {r['bytes_per_customer']:,.0f} | {r['disk_mb']:,.0f} "
            f"| {r['sigterm_ready_s']:.1f} ({r['sigterm_replayed']:,}, {r['sigterm_restore_s']:.1f}) "
            f"| {r['sigkill_ready_s']:.1f} ({r['sigkill_replayed']:,}, {r['sigkill_restore_s']:.1f}) |")
    return "\n".join(lines)


SECTION = "## State at scale: the features worker's local stores"


def section(results: list[dict[str, Any]], load: float) -> str:
    """The BENCHMARKS.md section of a run."""
    cache = results[0]["cache_customers"] if results else DEFAULT_CACHE_CUSTOMERS
    return "\n".join([
        SECTION, "",
        f"`python -m tests.bench.state_scaling` (run by `make bench` after the other stages): `journey features` "
        f"with its local state stores (`streams/state_store/`, RocksDB per partition, {cache:,} live states: "
        f"`state_cache_customers`), 4 partitions, the embedded broker; N customers with "
        f"{results[0]['events'] // results[0]['customers'] if results else 1} product view(s) each from an empty "
        "disk, then a SIGTERM and a restart, then 10% more events and a SIGKILL when about half of them are "
        "committed, and a restart. *Ready* is from spawning the process to `/readyz` 200 (interpreter start, "
        "group join: about 3 s on the embedded broker, opening the stores, replaying the changelog's tail); "
        "*restore s* is the restore alone (the worker's log). Resident memory is VmRSS at the end of the "
        f"backlog. Load average during the run: {load:.0f} on 2 cores (other processes share the machine: "
        "events/s is what was left for this one; *per CPU s* is the worker's own CPU time).", "",
        table(results), ""])


def upsert(path: Path, text: str) -> None:
    """Put ``text`` in ``path`` in place of the section of the same title, or before "## How to run"."""
    document = path.read_text() if path.exists() else ""
    start = document.find(SECTION)
    if start >= 0:
        end = document.find("\n## ", start + len(SECTION))
        document = document[:start] + text + ("" if end < 0 else document[end + 1:])
    else:
        at = document.find("## How to run")
        document = document + "\n" + text if at < 0 else document[:at] + text + "\n" + document[at:]
    path.write_text(document)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--customers", default="10000,100000,1000000", help="comma-separated sizes")
    parser.add_argument("--events-per-customer", type=int, default=1)
    parser.add_argument("--cache", type=int, default=None, help="state_cache_customers (default: the setting's)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--work", type=Path, default=None, help="keep the logs here (default: a temporary dir)")
    parser.add_argument("--markdown", type=Path, default=None, help="put the section in this file (BENCHMARKS.md)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="state-scaling-") as temporary:
        root = args.work or Path(temporary)
        for customers in (int(n) for n in args.customers.split(",")):
            results.append(one_size(customers, args.events_per_customer, args.cache, root))
    print(table(results))
    if args.markdown is not None:
        upsert(args.markdown, section(results, os.getloadavg()[0]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
