"""An in-process host for any processor, with simulated crash and restart, and ``check_processor``.

:class:`Harness` runs a processor (through the contract, streams/host/contract.py) the way
``streams/stateful.py`` does, without a broker: one partition, records in batches, per-key states
with the input offsets each applied, timers after every batch on the event-time watermark, and a
flush every few batches that writes the changed keys to a recorded changelog, emits their coalesced
outputs and commits the offset. A crash drops everything in memory (the processor too: a new one
comes from the factory), restores the states from the recorded changelog and resumes from the
committed offset; redelivered records the restored state already applied are skipped, as in the
Kafka host.

:func:`check_processor` (model: River's ``check_estimator``) runs the conformance checks every
processor must pass and raises :class:`NonConformance` naming the check that failed:

- ``contract``: the processor conforms to the contract (required methods, hook signatures);
- ``determinism``: two runs give the same outputs and states, and so does a run in another
  interpreter with another ``PYTHONHASHSEED`` (the factory must be importable: a module-level function);
- ``pickle``: every state survives ``snapshot``/``restore`` equal (cut at several points);
- ``out_of_order``: input shuffled within windows shorter than the lateness, with the watermark
  held back by the window, gives the same ``identity`` of the outputs as the ordered input;
- ``erase``: after erasing a customer, nothing of them is left: no state, no timer, nothing in the
  changelog once restored, nothing in the processor's own memory;
- ``crash``: runs crashed at several points and restarted give the same states and outputs
  (every output of the uncrashed run and no other; outputs since the last commit come again) as a
  run without a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import random
import subprocess
import sys
import types
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.registry import DEAD_LETTERS, INPUT_TOPICS
from streams.host.contract import Hosted, Output, problems, restore, snapshot
from streams.timer_queue import TimerQueue

#: (topic, key, value, event time ms); the event time only orders and shuffles the input.
Record = tuple[str, bytes, bytes | None, int]
Factory = Callable[[], Any]


@dataclass
class Entry:
    """A key's state and the offsets it applied (the host's changelog entry)."""

    state: Any
    applied: dict[str, int] = field(default_factory=dict)


@dataclass
class Run:
    outputs: list[Output]
    states: dict[str, Any]


class Harness:
    """One processor hosted in-process; ``run`` feeds records (crashing where told) and finishes the timers."""

    def __init__(self, factory: Factory, batch: int = 64, flush_every: int = 2, grace_ms: int = 0,
                 tail_ms: int = 366 * 86_400_000) -> None:
        self.factory = factory
        self.tail_ms = tail_ms
        self.batch = batch
        self.flush_every = flush_every
        self.grace_ms = grace_ms
        self.changelog: list[tuple[str, bytes | None]] = []
        self.outputs: list[Output] = []
        self.committed = 0  # the next record to read after a restart
        self.crashes = 0
        self._start()

    def _start(self) -> None:
        """A fresh process: a new processor, the states the changelog holds, the clock unknown."""
        self.hosted = Hosted(self.factory())
        self.clock_topics: frozenset[str] | None = None
        self.entries: dict[str, Entry] = {}
        for key, data in self.changelog:
            if data is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = restore(data)
        self.queue = TimerQueue()
        for key, entry in self.entries.items():
            self.queue.set(key, self.hosted.next_timer(entry.state))
        self.dirty: set[str] = set()
        self.tombstones: set[str] = set()
        self.newest: int | None = None
        self.watermark: int | None = None
        self.position = self.committed
        self.batches = 0

    @property
    def states(self) -> dict[str, Any]:
        return {key: entry.state for key, entry in self.entries.items()}

    def crash(self) -> None:
        """Lose everything not flushed and committed; restart from the changelog and the committed offset."""
        self.crashes += 1
        self._start()

    def run(self, records: Sequence[Record], crash_at: Iterable[int] = (), until_ms: int | None = None) -> Run:
        """Feed ``records`` (crashing once before each offset in ``crash_at``), flush, then fire every
        timer up to ``until_ms`` (default: the newest event time plus ``tail_ms``) and flush again."""
        crashes = sorted(set(crash_at))
        while self.position < len(records):
            end = min(self.position + self.batch, len(records))
            if crashes and crashes[0] < end and crashes[0] >= self.position:
                end = crashes.pop(0)
                self.take(records, end)
                self.crash()
                continue
            self.take(records, end)
            self.fire()
            self.batches += 1
            if self.batches % self.flush_every == 0:
                self.flush()
        self.flush()
        newest = max((r[3] for r in records), default=0)
        self.advance(until_ms if until_ms is not None else newest + self.tail_ms)
        self.flush()
        return Run(list(self.outputs), self.states)

    def take(self, records: Sequence[Record], end: int) -> None:
        """Process records from the position up to ``end`` (exclusive), as the Kafka host's ``handle`` does."""
        hosted = self.hosted
        if self.clock_topics is None:
            self.clock_topics = hosted.clock_topics({r[0] for r in records})
        for offset in range(self.position, end):
            topic, raw_key, value, _ = records[offset]
            self.position = offset + 1
            if value is None:
                continue
            key = raw_key.decode()
            entry = self.entries.get(key)
            if entry is None:
                entry = Entry(hosted.new_state(key))
                outputs = self._process(entry.state, topic, value, raw_key, offset)
                self.outputs.extend(outputs or ())
                if hosted.timed and topic in INPUT_TOPICS and (outputs is None or hosted.last_event_ms is None):
                    continue  # a refused record makes no state for a new key
                self.entries[key] = entry
            elif entry.applied.get(topic, -1) >= offset:
                continue  # redelivered after a restart: the restored state has it
            else:
                outputs = self._process(entry.state, topic, value, raw_key, offset)
                self.outputs.extend(outputs or ())
            entry.applied[topic] = offset
            self.dirty.add(key)
            if hosted.timed and outputs is not None:
                self.queue.set(key, hosted.next_timer(entry.state))
                event_ms = hosted.last_event_ms
                if event_ms is not None and topic in self.clock_topics and (self.newest is None
                                                                             or event_ms > self.newest):
                    self.newest = event_ms

    def _process(self, state: Any, topic: str, value: bytes, raw_key: bytes, offset: int) -> list[Output] | None:
        try:
            return self.hosted.process(state, topic, value, raw_key)
        except Exception as exc:  # the host dead-letters it and goes on
            return [(DEAD_LETTERS, raw_key, f"processing_failed {type(exc).__name__} @{offset}".encode())]

    def fire(self) -> None:
        """Fire the timers the watermark (newest event time less the grace) has passed."""
        if self.newest is not None:
            self.advance(self.newest - self.grace_ms)

    def advance(self, now_ms: int) -> None:
        """Move the clock to ``now_ms`` (never back) and call ``due`` for every key whose timer passed it."""
        if not self.hosted.timed or (self.watermark is not None and now_ms <= self.watermark):
            return
        self.watermark = now_ms
        for key in self.queue.pop_due(now_ms):
            entry = self.entries.get(key)
            if entry is None:
                continue
            self.outputs.extend(self.hosted.due(entry.state, now_ms))
            self.queue.set(key, self.hosted.next_timer(entry.state))
            self.dirty.add(key)

    def erase(self, key: str) -> None:
        """A privacy request for ``key``: drop its state and timers, tombstone it at the next flush."""
        entry = self.entries.pop(key, None)
        self.dirty.discard(key)
        self.queue.set(key, None)
        if entry is not None:
            self.tombstones.add(key)
            self.outputs.extend(self.hosted.erase(key, entry.state))

    def flush(self) -> None:
        """Changelog and coalesced outputs of the changed keys, then commit the position."""
        for key in sorted(self.tombstones):
            self.changelog.append((key, None))
        self.tombstones.clear()
        for key in sorted(self.dirty):
            entry = self.entries[key]
            self.changelog.append((key, snapshot(entry)))
            self.outputs.extend(self.hosted.emit(key, entry.state))
        self.dirty.clear()
        self.committed = self.position


# -- the checks ---------------------------------------------------------------------------------------

class NonConformance(AssertionError):
    """A processor failed a conformance check; the message names the check."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check


def canonical(value: Any) -> Any:
    """``value`` as nested tuples whose equality ignores set and dict order (a state's identity)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, canonical(getattr(value, f.name)))
                                            for f in dataclasses.fields(value)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((canonical(k), canonical(v)) for k, v in value.items()), key=repr)))
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted((canonical(v) for v in value), key=repr)))
    if isinstance(value, list | tuple) or type(value).__name__ == "deque":
        return tuple(canonical(v) for v in value)
    if isinstance(value, str | int | float | bool | bytes) or value is None:
        return value
    slots = [s for cls in type(value).__mro__ for s in getattr(cls, "__slots__", ())]
    if slots:
        return (type(value).__name__, tuple((s, canonical(getattr(value, s))) for s in slots if hasattr(value, s)))
    if hasattr(value, "__dict__"):
        return (type(value).__name__, canonical(vars(value)))
    return repr(value)


def mentions(value: Any, ids: set[str]) -> set[str]:
    """Which of ``ids`` appear (as a whole string or bytes) anywhere in ``value``'s object graph (cycles, modules,
    classes and functions are not followed)."""
    found: set[str] = set()
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            text = item.decode("utf-8", "replace") if isinstance(item, bytes) else item
            if text in ids:
                found.add(text)
            continue
        if item is None or isinstance(item, int | float | types.ModuleType | type | types.FunctionType
                                      | types.BuiltinFunctionType | types.MethodType) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset) or type(item).__name__ == "deque":
            stack.extend(item)
        else:
            if hasattr(item, "__dict__"):
                stack.append(vars(item))
            stack.extend(getattr(item, s) for cls in type(item).__mro__ for s in getattr(cls, "__slots__", ())
                         if isinstance(s, str) and hasattr(item, s))
    return found


def digest(run: Run) -> str:
    """One hash of a run's outputs (in order) and states (canonical)."""
    h = hashlib.sha256()
    for output in run.outputs:
        h.update(repr(output).encode())
    h.update(repr(canonical(run.states)).encode())
    return h.hexdigest()


def shuffled(records: Sequence[Record], window_ms: int, seed: int,
             topics: frozenset[str] = frozenset(INPUT_TOPICS)) -> list[Record]:
    """Records of ``topics`` in random order within each window of event time; the others (our own
    processors' outputs, one partition per customer) keep their order per (topic, key) and move among them."""
    rng = random.Random(seed)
    order = sorted(records, key=lambda r: (r[3] // window_ms, rng.random()))
    kept: dict[tuple[str, bytes], list[Record]] = defaultdict(list)
    for r in records:
        if r[0] not in topics:
            kept[(r[0], r[1])].append(r)
    taken: dict[tuple[str, bytes], int] = defaultdict(int)
    out = []
    for r in order:
        if r[0] in topics:
            out.append(r)
        else:
            group = (r[0], r[1])
            out.append(kept[group][taken[group]])
            taken[group] += 1
    return out


def _child() -> None:
    """The other interpreter of the determinism check: (factory, records, options) on stdin, the digest out."""
    factory, records, options = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.write(digest(Harness(factory, **options).run(records)))


def _root() -> str:
    return str(Path(__file__).resolve().parents[2])


def check_determinism(factory: Factory, records: Sequence[Record], options: dict[str, Any], seed: str = "4242") -> None:
    first = digest(Harness(factory, **options).run(records))
    second = digest(Harness(factory, **options).run(records))
    if first != second:
        raise NonConformance("determinism", "two runs over the same records differ")
    try:
        payload = pickle.dumps((factory, list(records), options))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise NonConformance("determinism", f"the factory must be importable (a module-level function): {exc}") from exc
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join([_root(), *sys.path])}
    done = subprocess.run([sys.executable, "-c", "from streams.host.testing import _child; _child()"], input=payload,
                          capture_output=True, check=False, env=env, cwd=_root())
    if done.returncode != 0:
        raise NonConformance("determinism", f"the run under PYTHONHASHSEED={seed} failed: "
                                            f"{done.stderr.decode()[-2000:]}")
    if done.stdout.decode() != first:
        raise NonConformance("determinism", f"a run under PYTHONHASHSEED={seed} gives other outputs or states")


def check_pickle(factory: Factory, records: Sequence[Record], options: dict[str, Any],
                 cuts: Sequence[float] = (0.3, 0.7, 1.0)) -> None:
    for cut in cuts:
        host = Harness(factory, **options)
        try:
            host.run(records[:int(len(records) * cut)])
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise NonConformance("pickle", f"a state cannot be written to the changelog: {exc}") from exc
        for key, state in host.states.items():
            copy = restore(snapshot(state))
            if canonical(copy) != canonical(state):
                raise NonConformance("pickle", f"the state of {key!r} differs once pickled and restored "
                                               f"(cut at {cut:.0%})")
            try:  # what an access request shows of it (sets come out in their iteration order: not compared)
                json.dumps(host.hosted.export(copy))
            except (TypeError, ValueError) as exc:
                raise NonConformance("pickle", f"the restored state of {key!r} does not export as JSON: {exc}") from exc


def check_out_of_order(factory: Factory, records: Sequence[Record], options: dict[str, Any], window_ms: int,
                       identity: Callable[[Run], Any], seeds: Sequence[int] = (1, 2)) -> None:
    want = identity(Harness(factory, **options).run(records))
    for seed in seeds:
        mixed = shuffled(records, window_ms, seed)
        if mixed == list(records):
            raise NonConformance("out_of_order", "the shuffle changed nothing: give records spanning several windows")
        got = identity(Harness(factory, **{**options, 'grace_ms': window_ms}).run(mixed))
        if got != want:
            raise NonConformance("out_of_order", f"input shuffled within {window_ms} ms (seed {seed}) gives "
                                                 "other outputs")


def check_erase(factory: Factory, records: Sequence[Record], options: dict[str, Any], customers: int = 3) -> None:
    host = Harness(factory, **options)
    host.run(records)
    keys = sorted(host.entries)[:customers]
    if not keys:
        raise NonConformance("erase", "the records made no state: nothing to erase")
    for key in keys:
        host.erase(key)
    host.flush()
    restarted = Harness(factory, **options)
    restarted.changelog = host.changelog
    restarted.crash()
    for where, holder in (("state", host.states), ("restored state", restarted.states),
                          ("processor memory", host.hosted.processor)):
        left = mentions(holder, set(keys))
        if left:
            raise NonConformance("erase", f"{where} still holds erased customers {sorted(left)}")
    for queue in (host.queue, restarted.queue):
        pending = set(queue.pop_due(2**62)) & set(keys)
        if pending:
            raise NonConformance("erase", f"timers of erased customers {sorted(pending)} are still pending")


def check_crash(factory: Factory, records: Sequence[Record], options: dict[str, Any],
                cuts: Sequence[float] = (0.25, 0.5, 0.8), view: Callable[[Output], Any] = lambda output: output
                ) -> None:
    want = Harness(factory, **options).run(records)
    # mid-batch, after a flush
    points = sorted({max(1, int(len(records) * cut)) + options["batch"] // 3 for cut in cuts})
    host = Harness(factory, **options)
    got = host.run(records, crash_at=points)
    if host.crashes != len(points):
        raise NonConformance("crash", f"{host.crashes} of {len(points)} crashes happened: give more records")
    if canonical(got.states) != canonical(want.states):
        differ = sorted(k for k in set(got.states) | set(want.states)
                        if canonical(got.states.get(k)) != canonical(want.states.get(k)))
        raise NonConformance("crash", f"states after crashes at {points} differ for {len(differ)} keys "
                                      f"(first: {differ[:3]})")
    missing = set(map(view, want.outputs)) - set(map(view, got.outputs))
    extra = set(map(view, got.outputs)) - set(map(view, want.outputs))
    if missing or extra:
        raise NonConformance("crash", f"outputs after crashes at {points}: {len(missing)} missing, {len(extra)} "
                                      f"not made without a crash")


def check_processor(factory: Factory, records: Sequence[Record], *, window_ms: int,
                    identity: Callable[[Run], Any] = lambda run: set(run.outputs), batch: int = 64,
                    tail_ms: int = 366 * 86_400_000, skip: Iterable[str] = (),
                    crash_view: Callable[[Output], Any] = lambda output: output) -> None:
    """Run every conformance check on the processors ``factory`` makes, over ``records`` (in event-time
    order); raise :class:`NonConformance` at the first that fails. ``window_ms``: the out-of-order window
    (below the processor's allowed lateness); ``identity``: what of a run must not depend on arrival order
    within it. ``crash_view``: what of each output must survive a crash (default: all of it; a processor
    documenting what a restart may change leaves that out). ``skip`` names checks not to run (each caller
    says why)."""
    skipped = set(skip)
    options: dict[str, Any] = {"batch": batch, "tail_ms": tail_ms}
    found = problems(factory())
    if found:
        raise NonConformance("contract", "; ".join(found))
    if "determinism" not in skipped:
        check_determinism(factory, records, options)
    if "pickle" not in skipped:
        check_pickle(factory, records, options)
    if "out_of_order" not in skipped:
        check_out_of_order(factory, records, options, window_ms, identity)
    if "erase" not in skipped:
        check_erase(factory, records, options)
    if "crash" not in skipped:
        check_crash(factory, records, options, view=crash_view)
