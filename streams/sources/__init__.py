"""Sources that feed the input topics: dataset replays, a generic mapped replay and the generator.

Every source gives :class:`~streams.sources.record.SourceRecord` (topic, key, JSON value,
event time) in event-time order; producing them is the caller's job. :func:`open_source`
opens a replay from a ``KIND:PATH`` spec (see :data:`SOURCE_KINDS`); the generator is
:func:`streams.sources.generator.generate`, pacing :func:`streams.sources.pacing.paced`.
"""

from __future__ import annotations

from pathlib import Path

from schemas.registry import INPUT_TOPICS
from streams.sources.edge import Pseudonym
from streams.sources.mapped import ReadOptions, mapped
from streams.sources.olist import olist
from streams.sources.record import SourceRecord, derive_event_id, record_of
from streams.sources.stats import ReplayStats
from streams.sources.taobao import taobao
from streams.sources.twcs import twcs

#: Replay kinds for ``open_source("KIND:PATH")`` and what each reads.
SOURCE_KINDS: dict[str, str] = {
    "taobao": "Taobao UserBehavior CSV: pv, cart, fav -> clickstream; buy -> orders (no prices)",
    "olist": "Olist directory of CSVs: order lifecycle (placed, paid, shipped, delivered, cancelled) -> orders; "
             "review texts -> chat",
    "twcs": "Customer Support on Twitter CSV: customer and agent tweets -> chat, threads -> conversations",
    "csv": "any CSV with a header, with a mapping (e.g. customer_id=CustomerID,event_time=Date,type=:page_view)",
    "jsonl": "any JSON-lines file, with a mapping of fields to keys (e.g. customer_id=user,event_time=ts,type=event)",
}


def open_source(spec: str, *, mapping: str | None = None, tz: str = "UTC", topic: str | None = None,
                pseudonym: Pseudonym | None = None,
                options: ReadOptions | None = None) -> tuple[list[SourceRecord], ReplayStats]:
    """The records of ``KIND:PATH`` in event-time order, and the stats of reading them.

    ``mapping``, ``tz``, ``topic`` (where records of an unknown type go; default "clickstream"),
    ``pseudonym`` (for emails or phones given as ids) and ``options`` (CSV dialect, decimal mark,
    encoding, time format: :class:`~streams.sources.mapped.ReadOptions`) apply to ``csv`` and ``jsonl``. The
    records are a list (the replay sorts in memory), so they can be counted and iterated more
    than once. Every source redacts free text (the edge: streams/sources/edge.py).
    """
    kind, sep, raw_path = spec.partition(":")
    if not sep or kind not in SOURCE_KINDS or not raw_path:
        kinds = "; ".join(f"{k}: {v}" for k, v in SOURCE_KINDS.items())
        raise ValueError(f"{spec!r} is not KIND:PATH with a known kind. Kinds: {kinds}")
    path = Path(raw_path).expanduser()
    if kind == "olist" and not path.is_dir():
        raise FileNotFoundError(f"no such directory: {path} (an olist replay reads the directory of Olist CSVs)")
    if kind != "olist" and not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    _refuse_unread_options(kind, mapping, tz, options)
    stats = ReplayStats()
    if kind == "taobao":
        return taobao(path, stats), stats
    if kind == "olist":
        return olist(path, stats), stats
    if kind == "twcs":
        return twcs(path, stats), stats
    if not mapping:
        raise ValueError(f"a {kind} replay needs a mapping, e.g. customer_id=CustomerID,event_time=Date,type=:search")
    if topic is not None and topic not in INPUT_TOPICS:
        raise ValueError(f"topic {topic!r} is not an input topic ({', '.join(INPUT_TOPICS)})")
    return mapped(path, kind, mapping, tz, topic or "clickstream", stats, pseudonym, options), stats


def _refuse_unread_options(kind: str, mapping: str | None, tz: str, options: ReadOptions | None) -> None:
    """An option the kind does not read is an error, never silently ignored (a latin-1 JSON-lines file would
    otherwise be read as UTF-8, a --tz for Taobao's unix seconds would look applied)."""
    options = options or ReadOptions()
    given = {"--map": mapping is not None, "--tz": tz != "UTC", "--delimiter": options.delimiter is not None,
             "--decimal": options.decimal != ".", "--encoding": options.encoding is not None,
             "--time-format": options.time_format is not None}
    if kind in ("taobao", "olist", "twcs"):
        unread = [name for name, on in given.items() if on]
        if unread:
            raise ValueError(f"{', '.join(unread)}: for csv: and jsonl: exports; a {kind} replay reads the "
                             f"{kind} layout as it is (see `journey run --help`)")
    elif kind == "jsonl" and (given["--delimiter"] or given["--encoding"]):
        unread = [name for name in ("--delimiter", "--encoding") if given[name]]
        raise ValueError(f"{', '.join(unread)}: for csv: files; a jsonl: file is UTF-8, one JSON object per line")


__all__ = ["SOURCE_KINDS", "ReadOptions", "ReplayStats", "SourceRecord", "derive_event_id", "open_source", "record_of"]
