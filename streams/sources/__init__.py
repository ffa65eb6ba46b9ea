"""Sources that feed the input topics: dataset replays, a generic mapped replay and the generator.

Every source yields :class:`~streams.sources.record.SourceRecord` in event-time order.
"""

from __future__ import annotations

from pathlib import Path

from streams.sources.mapped import mapped
from streams.sources.olist import olist
from streams.sources.record import SourceRecord
from streams.sources.stats import ReplayStats
from streams.sources.taobao import taobao
from streams.sources.twcs import twcs

SOURCE_KINDS = {
    "taobao": "Taobao UserBehavior CSV (pv, cart, fav -> clickstream; buy -> orders)",
    "olist": "Olist directory (orders, items, payments, status changes -> orders; review texts -> chat)",
    "twcs": "Customer Support on Twitter CSV (customer and agent tweets -> chat)",
    "csv": "any CSV export, with --map field=Column,...",
    "jsonl": "any JSON-lines export, with --map field=key,...",
}


def open_source(spec: str, *, mapping: str | None = None, tz: str = "UTC",
                topic: str | None = None) -> tuple[list[SourceRecord], ReplayStats]:
    """The records of ``KIND:PATH`` and what reading them counted."""
    kind, sep, raw_path = spec.partition(":")
    if not sep or kind not in SOURCE_KINDS:
        kinds = "; ".join(f"{k}: {v}" for k, v in SOURCE_KINDS.items())
        raise ValueError(f"{spec!r} is not KIND:PATH with a known kind ({kinds})")
    path = Path(raw_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such {'directory' if kind == 'olist' else 'file'}: {path}")
    stats = ReplayStats()
    if kind == "taobao":
        return taobao(path, stats), stats
    if kind == "olist":
        return olist(path, stats), stats
    if kind == "twcs":
        return twcs(path, stats), stats
    if not mapping:
        raise ValueError(f"{kind} replay needs --map (e.g. customer_id=CustomerID,event_time=Date,type=:page_view)")
    return mapped(path, kind, mapping, tz, topic or "clickstream", stats), stats


__all__ = ["SOURCE_KINDS", "ReplayStats", "SourceRecord", "open_source"]
