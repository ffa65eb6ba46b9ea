"""The triggers stage of ``make bench``: event-to-trigger latency under a steady live load, and triggers/s.

Two measurements, each on its own fresh embedded broker:

- **Latency** (``load``): ``journey features`` and ``journey triggers`` run live (started and
  joined first); a load process sends events at a steady rate for a fixed time, every event
  stamped ``event_time = now`` so the trigger host follows the wall clock. Among them: first
  orders of new customers (each fires ``welcome`` at once) and strongly negative chat messages
  in new conversations (each fires ``unhappy_customer`` at once). A consumer in the same process
  reads ``triggers`` and notes when each record arrives; a trigger's latency is its arrival
  minus the send time of the event it is anchored on (``source_event_id``). Baseline in the
  same run and process: every tenth event is echoed on a topic nobody processes, and its
  produce -> consume round trip is the broker's own latency under the same load. Cart timers
  run too (``after_minutes = 0.05`` and ``live_delay_seconds = 0`` in the bench's rules file):
  their lateness is arrival minus ``fired_at`` (the deadline), the wall-clock timer path.
- **Throughput** (backlog): ``journey triggers`` over the pre-produced workload, timed by its
  group's commits like the sink; the triggers it fired come from its stop log. Baseline in the
  same run: ``journey features`` over the same backlog (its own group), the other stateful
  worker on the same host.

Run alone: ``python -m tests.bench.run --only-triggers --output /tmp/t.md``. The load process is
``python -m tests.bench.triggers load ...``.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from plumbing.produce import CLIENT_LOGGER, PARTITIONER
from streams.kafka_options import FETCH_WAIT_MAX_MS
from streams.topics import TopicSpec, ensure_topics
from tests.bench.features import worker_problems
from tests.bench.procs import PYTHON, BenchError, wait_until

if TYPE_CHECKING:
    from streams.broker import EmbeddedBroker
    from tests.bench.run import BacklogRun, Bench, Offsets

#: The echo topic of the latency baseline (no worker reads it).
ECHO = "bench-echo"
ECHO_EVERY = 10
#: The load: events per second, for how long, and how long to wait for the last triggers after it.
RATES = (1000, 5000)
SECONDS = 30.0
QUICK_SECONDS = 15.0
SETTLE_SECONDS = 15.0
#: Shares of the events that fire at once: a new customer's first order, a negative chat message.
FIRST_ORDER_SHARE = 0.03
NEGATIVE_CHAT_SHARE = 0.03
CART_SHARE = 0.08
POOL = 5000  # customers browsing (they never order, so their carts are abandoned)
NEGATIVE_TEXTS = ("This is terrible, the worst service ever. I hate it!", "awful, broken, useless, never again")
#: The bench's rules: the shipped ones, with a 3 s cart timer fired on the wall clock without delay.
RULES = "[timers]\nlive_delay_seconds = 0\n[cart_abandoned]\nafter_minutes = 0.05\n"
EVENT_DRIVEN = ("welcome", "unhappy_customer")


# -- the load process -----------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50, p99 (nearest rank), max and count of ``values`` (seconds) in milliseconds."""
    if not values:
        return None
    xs = sorted(values)

    def rank(q: float) -> float:
        return 1000 * xs[max(math.ceil(q * len(xs)) - 1, 0)]

    return {"n": len(xs), "p50_ms": rank(0.50), "p99_ms": rank(0.99), "max_ms": 1000 * xs[-1],
            "mean_ms": 1000 * sum(xs) / len(xs)}


class Load:
    """Events at a steady rate, and the triggers (and echoes) they come back as."""

    def __init__(self, bootstrap: str, partitions: int, rate: float, seconds: float, seed: int) -> None:
        self.kafka = {"bootstrap.servers": bootstrap}
        self.partitions, self.rate, self.seconds = partitions, rate, seconds
        self.rng = random.Random(seed)
        self.producer = Producer({**self.kafka, "partitioner": PARTITIONER, "logger": CLIENT_LOGGER, "linger.ms": 5})
        self.sent_at: dict[str, tuple[float, str]] = {}  # event id that fires at once -> (send time, trigger)
        self.arrived: list[tuple[float, dict[str, Any]]] = []
        self.echoes: list[float] = []
        self.sent = Counter[str]()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._run = uuid.uuid4().hex[:6]

    def _read(self) -> None:
        # The reader is automation consuming triggers: on the embedded broker its fetch wait is part of the
        # latency it sees (streams/kafka_options.py), so it waits as the live workers do.
        reader = Consumer({**self.kafka, "group.id": f"bench-latency-{self._run}", "enable.auto.commit": False,
                           "logger": CLIENT_LOGGER, "fetch.queue.backoff.ms": 10,
                           "fetch.wait.max.ms": FETCH_WAIT_MAX_MS["triggers"]})
        reader.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in ("triggers", ECHO)
                       for p in range(self.partitions)])
        try:
            while not self._stop.is_set():
                msg = reader.poll(0.1)
                if msg is None or msg.error() is not None:
                    continue
                now = time.time()
                if msg.topic() == ECHO:
                    self.echoes.append(now - float(msg.value()))
                else:
                    self.arrived.append((now, orjson.loads(msg.value())))
        finally:
            reader.close()

    def _event(self, i: int, now: float) -> tuple[str, str, dict[str, Any], str | None]:
        """(topic, customer, body, trigger it fires at once or None) of the i-th event."""
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        event_id = f"load-{self._run}-{i}"
        r = self.rng.random()
        if r < FIRST_ORDER_SHARE:
            customer = f"buyer-{self._run}-{i}"
            body = {"type": "order_placed", "order_id": f"o-{event_id}", "amount": 25.0, "currency": "EUR",
                    "items": [{"product_id": f"p{self.rng.randrange(500)}", "quantity": 1, "unit_price": 25.0}]}
            return "orders", customer, {**body, "event_id": event_id, "customer_id": customer,
                                        "event_time": stamp}, "welcome"
        customer = f"c{self.rng.randrange(POOL)}"
        base = {"event_id": event_id, "customer_id": customer, "event_time": stamp}
        if r < FIRST_ORDER_SHARE + NEGATIVE_CHAT_SHARE:
            body = {"type": "chat_message", "conversation_id": f"k-{event_id}", "sender_role": "customer",
                    "channel": "live_chat", "text": self.rng.choice(NEGATIVE_TEXTS), "language": "en"}
            return "chat", customer, {**base, **body}, "unhappy_customer"
        if r < FIRST_ORDER_SHARE + NEGATIVE_CHAT_SHARE + CART_SHARE:
            return "clickstream", customer, {**base, "type": "add_to_cart", "product_id": f"p{self.rng.randrange(500)}",
                                             "quantity": 1, "channel": "web"}, None
        if self.rng.random() < 0.5:
            return "clickstream", customer, {**base, "type": "page_view", "page_url": "https://shop.example/",
                                             "channel": "web"}, None
        return "clickstream", customer, {**base, "type": "product_view", "product_id": f"p{self.rng.randrange(500)}",
                                         "channel": "web"}, None

    def _send(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=self._delivered)
                return
            except BufferError:
                self.producer.poll(0.01)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err.str()}")

    def run(self, settle: float) -> dict[str, Any]:
        self._reader.start()
        time.sleep(1.0)  # the reader is assigned before the first event
        total = round(self.rate * self.seconds)
        started = time.time()
        i = 0
        while i < total:
            now = time.time()
            due = min(total, int((now - started) * self.rate) + 1)
            while i < due:
                now = time.time()
                topic, customer, body, fires = self._event(i, now)
                key = customer.encode()
                if fires is not None:
                    self.sent_at[body["event_id"]] = (now, fires)
                self._send(topic, key, orjson.dumps(body))
                self.sent[topic] += 1
                if i % ECHO_EVERY == 0:
                    self._send(ECHO, key, repr(time.time()).encode())
                i += 1
            self.producer.poll(0)
            time.sleep(max(0.0, started + i / self.rate - time.time()))
        sent_seconds = time.time() - started
        self.producer.flush(30)
        deadline = time.time() + settle
        while time.time() < deadline:
            anchors = {t["source_event_id"] for _, t in self.arrived}
            if all(e in anchors for e in self.sent_at):
                break
            time.sleep(0.2)
        time.sleep(4.0)  # the last cart timers (3 s) and anything that should not come
        self._stop.set()
        self._reader.join(10)
        return self.result(total, sent_seconds)

    def result(self, total: int, sent_seconds: float) -> dict[str, Any]:
        latency: dict[str, list[float]] = {kind: [] for kind in EVENT_DRIVEN}
        lateness: list[float] = []
        seen: Counter[str] = Counter()
        by_type: Counter[str] = Counter()
        for arrived, trigger in self.arrived:
            by_type[trigger["trigger"]] += 1
            sent = self.sent_at.get(trigger["source_event_id"])
            if sent is not None and sent[1] == trigger["trigger"]:
                latency[trigger["trigger"]].append(arrived - sent[0])
                seen[trigger["source_event_id"]] += 1
            elif trigger["fired_by"] == "timer":
                lateness.append(arrived - datetime.fromisoformat(trigger["fired_at"]).timestamp())
        expected = Counter(kind for _, kind in self.sent_at.values())
        missing = Counter(kind for e, (_, kind) in self.sent_at.items() if not seen[e])
        return {"events": total, "send_seconds": sent_seconds, "rate": total / sent_seconds, "sent": dict(self.sent),
                "expected": dict(expected), "missing": dict(missing),
                "duplicates": sum(n - 1 for n in seen.values() if n > 1), "triggers": dict(by_type),
                "latency": percentiles([x for xs in latency.values() for x in xs]),
                "latency_by_trigger": {k: percentiles(v) for k, v in latency.items()},
                "echo": percentiles(self.echoes), "timer_lateness": percentiles(lateness),
                "produce_errors": self.errors[:5]}


def load_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.triggers load")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=RATES[0])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = Load(args.bootstrap, args.partitions, args.rate, args.seconds, args.seed).run(args.settle)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


# -- the stage, driven by tests/bench/run.py ------------------------------------------------------
def run(bench: Bench) -> None:
    """Both measurements (results land in ``bench.results.triggers`` and ``bench.results.rates``)."""
    broker = bench.broker("broker-triggers")
    _, ends = bench.finish_produce("produce_triggers", *bench.produce("produce_triggers", broker.bootstrap,
                                                                      wait=False), broker)
    backlog(bench, broker, ends)
    broker.stop()
    latency(bench)


_STOPPED = re.compile(r"stopped: WorkerStats\(consumed=(?P<consumed>\d+),.*skipped_redelivered=(?P<redelivered>\d+),"
                      r".*\((?:fired: (?P<fired>\{[^}]*\}); )?invalid input skipped: (?P<invalid>\d+)\)")


def stop_log(text: str) -> dict[str, Any] | None:
    """consumed, skipped_redelivered, invalid (and the triggers worker's fired counts) from its stop line."""
    found = list(_STOPPED.finditer(text))
    if not found:
        return None
    m = found[-1]
    fired = {k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", m["fired"] or "")}
    return {"consumed": int(m["consumed"]), "skipped_redelivered": int(m["redelivered"]),
            "invalid": int(m["invalid"]), "fired": fired}


def _pass(bench: Bench, stage: str, role: str, broker: EmbeddedBroker, ends: Offsets) -> tuple[BacklogRun,
                                                                                                  dict[str, Any]]:
    env, _ = bench._sink_env(stage, broker.bootstrap, f"bench-{stage}")
    run_ = bench.backlog_worker(stage, [PYTHON, "-m", "streams.cli", role], env, f"bench-{stage}-{role}", broker, ends)
    stats = stop_log(run_.worker.log_path.read_text(errors="replace"))
    bench.check(stage, worker_problems(stats, bench.w))
    return run_, stats or {}


def backlog(bench: Bench, broker: EmbeddedBroker, ends: Offsets) -> None:
    """``journey triggers`` over the backlog, then ``journey features`` over the same backlog (the baseline)."""
    run_, stats = _pass(bench, "triggers", "triggers", broker, ends)
    rate = bench.backlog_rate("triggers", "`journey triggers` (streams/stateful.py + TriggersProcessor)",
                              "1 (worker)", run_)
    fired = sum(stats.get("fired", {}).values())
    consumed = stats.get("consumed") or bench.w.total
    bench.results.triggers["backlog"] = {
        "fired": stats.get("fired", {}), "fired_total": fired, "consumed": consumed,
        "triggers_per_event": fired / consumed, "triggers_per_s": fired / consumed * rate.per_second}
    base_run, _ = _pass(bench, "triggers_features", "features", broker, ends)
    bench.backlog_rate("triggers_features", "baseline: `journey features` over the same backlog", "1 (worker)",
                       base_run)


def latency(bench: Bench) -> None:
    """One live run per rate of ``--triggers-rate`` (results: ``triggers["live"]``, a list in rate order)."""
    bench.results.triggers["live"] = []
    for i, rate in enumerate(bench.args.triggers_rate):
        _latency(bench, "triggers_live" if i == 0 else f"triggers_live_{rate:.0f}", rate)


def _latency(bench: Bench, stage: str, rate: float) -> None:
    """The live run: workers joined first, then the steady load; latency and its broker baseline."""
    from tests.bench.run import PARTITIONS, broker_cpu, other_load, others_busy

    broker = bench.broker("broker-triggers-live")
    kafka = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(kafka, [TopicSpec(ECHO, PARTITIONS)])
    rules = bench.tmp / "bench-rules.toml"
    rules.write_text(RULES)
    workers = []
    for role in ("features", "triggers"):
        env, _ = bench._sink_env(stage, broker.bootstrap, f"bench-{stage}")
        env["JOURNEY_TRIGGER_RULES_FILE"] = str(rules)
        worker = bench.child(f"{stage}-{role}", [PYTHON, "-m", "streams.cli", role], env)
        workers.append(worker)

    def joined() -> bool | None:
        for worker in workers:
            worker.check_alive()
        return True if all("restored" in w.log_path.read_text(errors="replace") for w in workers) else None

    wait_until(stage, "both workers' partition assignment", joined, 90, 0.1)
    seconds = QUICK_SECONDS if bench.args.quick else bench.args.triggers_seconds
    out = bench.tmp / f"{stage}.json"
    _say(stage, f"workers joined; sending {rate:,.0f} events/s for {seconds:.0f}s (event_time = now)")
    load = bench.child(f"{stage}-load", [PYTHON, "-m", "tests.bench.triggers", "load", "--bootstrap",
                                         broker.bootstrap, "--partitions", str(PARTITIONS), "--rate", str(rate),
                                         "--seconds", str(seconds), "--out", str(out)])
    cpu0 = {w.name: (w.sample() or _zero()).cpu_seconds for w in workers}
    broker0, busy0, wall0 = broker_cpu(broker), others_busy(), time.monotonic()
    if load.wait(timeout=seconds + SETTLE_SECONDS + 60) != 0 or not out.exists():
        raise BenchError(f"{stage}: the load process exited with {load.proc.returncode}\n{load.tail()}")
    wall = time.monotonic() - wall0
    cpu = {w.name: (w.sample() or _zero()).cpu_seconds - cpu0[w.name] for w in workers}
    broker_seconds = broker_cpu(broker) - broker0
    ours = sum(cpu.values()) + broker_seconds + (load.last or _zero()).cpu_seconds
    for worker in workers:
        worker.stop(signal.SIGTERM, 60)
    broker.stop()
    result = orjson.loads(out.read_bytes())
    result["worker_cpu_seconds"] = cpu
    result["window_seconds"] = wall
    result["broker_cores"] = broker_seconds / wall
    result["load_cores"] = (load.last or _zero()).cpu_seconds / wall
    result["other_cores"] = other_load(others_busy() - busy0, ours, wall)
    bench.results.triggers["live"].append(result)
    problems = [f"{n:,} {kind} trigger(s) never arrived" for kind, n in result["missing"].items() if n]
    if result["duplicates"]:
        problems.append(f"{result['duplicates']:,} event-driven triggers arrived twice")
    if result["produce_errors"]:
        problems.append(f"produce errors: {result['produce_errors']}")
    bench.check(stage, problems)
    lat, echo = result["latency"], result["echo"]
    if lat:
        _say(stage, f"event -> trigger p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max "
                    f"{lat['max_ms']:.0f} ms over {lat['n']:,} triggers; broker round trip p50 "
                    f"{echo['p50_ms']:.1f} ms, p99 {echo['p99_ms']:.1f} ms")


def _zero() -> Any:
    from tests.bench.procs import ProcSample

    return ProcSample(0.0, 0.0)


def _say(stage: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stage:<13} {message}", flush=True)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["load"]:
        raise SystemExit("usage: python -m tests.bench.triggers load --bootstrap HOST:PORT --out FILE [...]")
    load_main(sys.argv[2:])
