"""Where a features worker's memory per customer goes: bytes by component of the state.

``python -m tests.bench.state_size --customers 20000 --events 120000`` builds the customers'
states from the bench workload with the features processor (no Kafka, as ``stages.py
features-memory`` does), then counts, for every component (the engine's own fields and each
feature's state), the bytes of the Python objects it holds (``sys.getsizeof`` over the
object graph, each object once across all customers: shared strings and small ints count
once) and its pickled bytes. The host adds one ``Entry`` (state and applied offsets) per key
and the store's dict slot; those are counted too.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections import Counter
from typing import Any

from streams.stateful import Entry

_ATOMS = (int, float, str, bytes, bool, type(None))


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of ``obj`` and everything it references, skipping objects already in ``seen``."""
    total, stack = 0, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, _ATOMS):
            continue
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
        elif hasattr(o, "__slots__"):
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
        elif hasattr(o, "__dict__"):
            stack.append(o.__dict__)
    return total


def breakdown(states: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per component: Python bytes and pickled bytes per customer."""
    n = max(len(states), 1)
    memory: Counter[str] = Counter()
    pickled: Counter[str] = Counter()
    seen: set[int] = set()
    fields = ("customer_id", "newest", "recent_ids", "applied")
    for key, state in states.items():
        entry = Entry(state, dict(state.applied))
        memory["host: store key, Entry, its applied offsets"] += (
            deep_size(key, seen) + sys.getsizeof(entry) + sys.getsizeof(entry.__dict__)
            + deep_size(entry.applied, seen))
        memory["engine: CustomerState object"] += sys.getsizeof(state)
        seen.add(id(state))
        for name in fields:
            memory[f"engine: {name}"] += deep_size(getattr(state, name), seen)
            pickled[f"engine: {name}"] += len(pickle.dumps(getattr(state, name), pickle.HIGHEST_PROTOCOL))
        memory["engine: features dict"] += sys.getsizeof(state.features)
        seen.add(id(state.features))
        for name, feature in state.features.items():
            memory[f"feature: {name}"] += deep_size(feature, seen)
            pickled[f"feature: {name}"] += len(pickle.dumps(feature, pickle.HIGHEST_PROTOCOL))
    return {component: {"memory_bytes": memory[component] / n, "pickled_bytes": pickled[component] / n}
            for component in sorted(memory, key=memory.__getitem__, reverse=True)}


def measure(customers: int, events: int, restored: bool = False) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The states of ``customers`` after ``events``; ``restored``: as a worker holds them after its restore."""
    from processors.features.build import build_features
    from tests.bench.workload import generate

    work = generate(events, seed=11, customers=customers, invalid_ratio=0.0)
    processor = build_features()
    states: dict[str, Any] = {}
    for topic, key, value in work.records:
        k = key.decode()
        state = states.get(k)
        if state is None:
            state = states[k] = processor.new_state(k)
        processor.process(state, topic, value, key)
        state.applied[topic] = state.applied.get(topic, -1) + 1  # as a host sets it (an offset per topic)
    whole = sum(len(pickle.dumps(s, pickle.HIGHEST_PROTOCOL)) for s in states.values()) / max(len(states), 1)
    if restored:  # each record unpickled on its own, as the changelog restore does
        states = {k: pickle.loads(pickle.dumps(Entry(s, s.applied), pickle.HIGHEST_PROTOCOL)).state
                  for k, s in states.items()}
    return breakdown(states), {"customers": len(states), "events": len(work.records), "pickled_state": whole}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.state_size")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--restored", action="store_true", help="measure the states as restored from the changelog")
    args = parser.parse_args()
    parts, totals = measure(args.customers, args.events, args.restored)
    memory = sum(p["memory_bytes"] for p in parts.values())
    print(f"{totals['customers']:,} customers, {totals['events']:,} events; Python objects {memory:,.0f} bytes "
          f"per customer; pickled CustomerState {totals['pickled_state']:,.0f} bytes")
    print("| component | bytes per customer (Python) | share | pickled bytes |\n|---|---|---|---|")
    for name, p in parts.items():
        print(f"| {name} | {p['memory_bytes']:,.0f} | {p['memory_bytes'] / memory:.0%} | {p['pickled_bytes']:,.0f} |")


if __name__ == "__main__":
    main()
