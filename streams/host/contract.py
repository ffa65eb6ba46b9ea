"""The one contract between a processor (plain Python, ``processors/``) and the stream host.

A processor is any object with the three required methods below; every other hook is optional
and has a documented default. The host never looks a hook up per call: :class:`Hosted` reads the
processor once, fills the defaults, and is what ``streams/stateful.py``, ``streams/erasure.py``,
``streams/cli.py`` and the test harness (``streams/host/testing.py``) call. Processors stay free
of host imports (the domain imports no ``streams``): they conform structurally, and declare the
optional hooks they implement in ``host_hooks`` (a tuple of names), which :class:`Hosted` checks
against what they define, so a typo or a forgotten hook is an error at start, not a silent default.

Required:

- ``new_state(key) -> state``: a fresh state for a key (customer id) the host has not seen.
- ``process(state, topic, value, key) -> outputs``: apply one record to its key's state; return
  the immediate outputs (``(topic, key, value)`` tuples). Invalid input: return ``[]`` (count it).
- ``emit(key, state) -> outputs``: the coalesced outputs of a key whose state changed since the
  last flush (one profile per flush, not one per record). Default-like processors return ``[]``.

Optional hooks (default in brackets):

- ``name`` [the class name]: how logs, dead letters and audit records name the processor.
- ``last_event_ms`` [None]: the event time of the record just processed, read after every
  ``process``; None means the record was refused (a timed processor then makes no state for a key
  it had not seen). It moves the host's event-time watermark.
- ``due(state, now_ms) -> outputs`` and ``next_timer(state) -> ms | None`` [no timers]: both or
  neither. After each batch the host calls ``due`` for every key whose ``next_timer`` is before its
  clock, then asks ``next_timer`` again. A processor with timers is *timed*.
- ``clock_topics`` [every consumed topic]: the topics whose records carry event time (the
  watermark waits only for their partitions).
- ``live_clock(wall_ms) -> ms`` [the wall clock]: once records are live, the clock passed to
  ``due`` is at least this (triggers hold timers back by a live delay).
- ``erase(key, state) -> outputs`` [nothing]: the customer was erased; return the tombstones for
  what the processor keeps outside the per-key state (features tombstones its compacted profile).
- ``erased_subject`` [not given]: an attribute the host sets to a function ``customer_id -> HMAC |
  None`` over the suppression list, for a processor that must know (messages blocks on it).
- ``export(state) -> JSON-able`` [``plain(state)``: dataclass/slots fields as dicts and lists]: what
  ``journey export`` shows of a state (privacy access requests).
- ``invalid`` [0]: how many records were refused, for the worker's stop line.

State: pickled (``snapshot``/``restore`` below, the changelog's format). Everything a processor
needs to resume must be in the state (or in the processor's configuration): the host drops the
processor's memory of a key at a crash and brings back only what the changelog holds.

Order of calls, per batch of records (streams/stateful.py and streams/host/testing.py):

1. at assignment: ``restore`` every changelog record of the partitions (last per key wins), then
   ``next_timer`` of every restored state;
2. per record: ``new_state`` (an unseen key), ``process``, then read ``last_event_ms`` and
   ``next_timer``; a privacy request calls ``erase`` for each of the customer's keys instead;
3. after the batch: ``live_clock`` (if live), then ``due`` + ``next_timer`` for each key whose timer
   passed the clock;
4. at a flush: ``snapshot`` and ``emit`` for every key changed since the last flush, then the
   offsets are committed (streams/host/checkpoint.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from processors.output import ErasureOutput as Output  # (topic, key, value); value None is a tombstone

S = TypeVar("S")

#: Optional hooks a processor may implement, with their parameter names (methods) or None (attributes).
OPTIONAL_HOOKS: dict[str, tuple[str, ...] | None] = {
    "due": ("state", "now_ms"), "next_timer": ("state",), "live_clock": ("wall_ms",),
    "erase": ("key", "state"), "export": ("state",), "clock_topics": None, "erased_subject": None,
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "new_state": ("key",), "process": ("state", "topic", "value", "key"), "emit": ("key", "state"),
}


@runtime_checkable
class Processor(Protocol[S]):
    """The required part of the contract (see the module docstring for the optional hooks)."""

    def new_state(self, key: str) -> S: ...

    def process(self, state: S, topic: str, value: bytes | None, key: bytes | None) -> list[Output]: ...

    def emit(self, key: str, state: S) -> list[Output]: ...


class ContractError(TypeError):
    """A processor that does not conform: the message names the hook."""


def plain(value: Any) -> Any:
    """A processor state as JSON-friendly data (dataclasses, slots objects, tuples, sets, deques)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset) or type(value).__name__ == "deque":
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    slots = [s for cls in type(value).__mro__ for s in getattr(cls, "__slots__", ())]
    if slots:
        return {s: plain(getattr(value, s)) for s in slots if hasattr(value, s)}
    if hasattr(value, "__dict__"):
        return {k: plain(v) for k, v in vars(value).items()}
    return repr(value)


def snapshot(entry: Any) -> bytes:
    """A state (or the host's entry holding it) as changelog bytes."""
    return pickle.dumps(entry, pickle.HIGHEST_PROTOCOL)


def restore(data: bytes) -> Any:
    """The state (or entry) a changelog record holds (our own changelog: written by our workers)."""
    return pickle.loads(data)


def problems(processor: object) -> list[str]:
    """What keeps ``processor`` from conforming (empty: it conforms); each names the hook."""
    found: list[str] = []
    for name, params in REQUIRED.items():
        method = getattr(processor, name, None)
        if not callable(method):
            found.append(f"{name}: required, missing")
        elif _params(method) not in (None, len(params)):
            found.append(f"{name}: takes {_params(method)} arguments, the contract passes {len(params)}")
    defined = {name for name in OPTIONAL_HOOKS if hasattr(processor, name)}
    for name in defined:
        params = OPTIONAL_HOOKS[name]
        if params is not None:
            method = getattr(processor, name)
            if not callable(method):
                found.append(f"{name}: not callable")
            elif _params(method) not in (None, len(params)):
                found.append(f"{name}: takes {_params(method)} arguments, the contract passes {len(params)}")
    if ("due" in defined) != ("next_timer" in defined):
        found.append("due/next_timer: a timed processor needs both")
    if "due" in defined and not hasattr(processor, "last_event_ms"):
        found.append("last_event_ms: a timed processor must say each record's event time (None: refused)")
    declared = getattr(processor, "host_hooks", None)
    if declared is not None:
        unknown = set(declared) - set(OPTIONAL_HOOKS) - {"last_event_ms", "name", "invalid"}
        if unknown:
            found.append(f"host_hooks: not hooks of the contract: {sorted(unknown)}")
        undeclared = (defined - set(declared)) - {"erased_subject"}
        missing = {h for h in declared if not hasattr(processor, h)}
        if undeclared:
            found.append(f"host_hooks: defines {sorted(undeclared)} without declaring them")
        if missing:
            found.append(f"host_hooks: declares {sorted(missing)} without defining them")
    return found


def _params(method: Callable[..., Any]) -> int | None:
    """How many positional arguments a bound method takes (None: any number, or unknown)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def _no_outputs(*_args: Any) -> list[Output]:
    return []


def _same(ms: int) -> int:
    return ms


class Hosted(Generic[S]):
    """A processor with every hook resolved once (defaults filled): what the host calls.

    Refuses (:class:`ContractError`) a processor that does not conform (:func:`problems`).
    """

    def __init__(self, processor: Processor[S]) -> None:
        found = problems(processor)
        if found:
            raise ContractError(f"{type(processor).__name__} does not conform to the processor contract: "
                                + "; ".join(found))
        self.processor = processor
        #: Whether the processor names itself (``name``); else the host names it (its changelog, its class).
        self.named: bool = bool(getattr(processor, "name", None))
        self.name: str = getattr(processor, "name", None) or type(processor).__name__
        self.new_state = processor.new_state
        self.process = processor.process
        self.emit = processor.emit
        self.timed: bool = hasattr(processor, "due")
        self.due: Callable[[S, int], list[Output]] = getattr(processor, "due", _no_outputs)
        self.next_timer: Callable[[S], int | None] = getattr(processor, "next_timer", lambda _state: None)
        self.live_clock: Callable[[int], int] = getattr(processor, "live_clock", _same)
        self.erase: Callable[[str, S], list[Output]] = getattr(processor, "erase", _no_outputs)
        self.export: Callable[[S], Any] = getattr(processor, "export", plain)
        self.wants_erasures: bool = hasattr(processor, "erased_subject")

    @property
    def last_event_ms(self) -> int | None:
        """The event time of the record just processed (None: refused, or a processor without event time)."""
        return getattr(self.processor, "last_event_ms", None)

    @property
    def invalid(self) -> int:
        return getattr(self.processor, "invalid", 0)

    def clock_topics(self, consumed: Iterable[str]) -> frozenset[str]:
        """The topics whose records carry event time (default: every consumed topic)."""
        return frozenset(getattr(self.processor, "clock_topics", consumed))

    def give_erasures(self, erased_subject: Callable[[str], str | None]) -> None:
        """Hand the suppression-list lookup to a processor that asked for it (``erased_subject``)."""
        if self.wants_erasures:
            self.processor.erased_subject = erased_subject  # type: ignore[attr-defined]


def hosted(processor: Any) -> Hosted[Any]:
    """``processor`` as a :class:`Hosted` (a Hosted is returned as is)."""
    return processor if isinstance(processor, Hosted) else Hosted(processor)
