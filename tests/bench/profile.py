"""Summarising a py-spy raw (collapsed-stack) profile of a worker (the sink by default) into where its time goes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>.+?)(?::(?P<line>\d+))?\)$")

#: Buckets of the sink's hot path: (label, functions). A frame matches when its function (or the method's
#: qualified name) is one of those given and its file is in the project; the innermost match of a stack
#: wins. Both the sink's own loop and the shared ``BatchWorker`` loop are recognised.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("validate (schemas.validation.validate)", ("validate",)),
    ("dead letters (build, insert, produce)", ("dead_letter", "dead_letters_table")),
    ("Arrow build (sinks.batches.events_table)", ("events_table",)),
    ("insert into chDB (insert_arrow)", ("IngestSink._insert",)),
    ("commit offsets", ("IngestSink._commit", "IngestSink.commit", "BatchWorker.commit")),
    ("per-record loop in handle() (msg accessors, dedup set, staging)", ("IngestSink.handle",)),
    ("consume() from librdkafka (incl. waiting for data)", ("IngestSink.poll", "BatchWorker.poll")),
    ("rest of flush() (dead-letter produce/flush, bookkeeping)", ("IngestSink.flush",)),
)
PROJECT_DIRS = ("schemas/", "sinks/", "streams/", "processors/")


@dataclass
class Profile:
    """Main-thread sample counts per hot-path bucket and per function (self, inclusive); samples per thread."""

    samples: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)  # samples per thread (idle included)

    def share(self, count: int) -> float:
        return 100.0 * count / self.samples if self.samples else 0.0


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return file


def _in_project(file: str) -> bool:
    return _short(file).startswith(PROJECT_DIRS)


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    return match["func"], match["file"]


def summarise(path: Path, buckets: tuple[tuple[str, tuple[str, ...]], ...] = BUCKETS) -> Profile:
    """Read ``py-spy record --threads --format raw`` output (one ``thread;frame;... count`` line per stack).

    ``buckets`` name the steps of the profiled process (the sink's by default).
    """
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = [f for f in stack.split(";") if f]
        thread = "MainThread"
        if parts and parts[0].startswith("thread ("):  # py-spy --threads: "thread (tid): name"
            thread = parts.pop(0).split(":", 1)[-1].strip() or "MainThread"
        profile.threads[thread] += count
        frames = [_parse(f) for f in parts]
        if thread != "MainThread" or not frames:
            continue
        profile.samples += count
        leaf_func, leaf_file = frames[-1]
        profile.self_time[f"{leaf_func} ({_short(leaf_file)})"] += count
        for name in {f"{func} ({_short(file)})" for func, file in frames}:
            profile.inclusive[name] += count
        bucket = "other Python code on the main thread"
        for func, file in reversed(frames):
            if not _in_project(file):
                continue
            found = next((label for label, names in buckets
                          if any(func == f or func.endswith("." + f) for f in names)), None)
            if found:
                bucket = found
                break
        profile.buckets[bucket] += count
    return profile
