"""The benchmark's fixed, seeded workload: realistic ~200-byte JSON input events, built with orjson.

Every process of the benchmark rebuilds the same records from the seed (and checks the
digest), so no stage depends on another's files. The mix: mostly clickstream
(page_view, product_view, add_to_cart, a few searches) over ~20k customers, some
``order_placed`` with items and amount, a little chat, and ~0.1% invalid records
(malformed JSON, unknown event type) that must end up as dead letters.
"""

from __future__ import annotations

import hashlib
import random
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

START_EPOCH = 1_709_251_200.0  # 2024-03-01T00:00:00Z: the whole week sits in one monthly partition
SPAN_SECONDS = 7 * 24 * 3600
DEFAULT_EVENTS = 300_000
QUICK_EVENTS = 50_000
DEFAULT_SEED = 20_240_301
CUSTOMERS = 20_000
INVALID_RATIO = 0.001

_BRANDS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "soylent", "wonka")
_PAGES = ("/", "/search", "/deals", "/category/shoes", "/category/books", "/account", "/help", "/cart")
_REFERRERS = ("https://www.google.com/", "https://t.co/x", None, None, "https://news.example.org/a")
_DEVICES = ("desktop", "mobile", "mobile", "tablet")
_CHANNELS = ("web", "web", "app", "mobile_web")
_QUERIES = ("running shoes", "usb-c cable", "coffee grinder", "gift for dad", "rain jacket", "lego")
_CHAT = ("Where is my order?", "Hi, can I change the delivery address?", "The item arrived damaged.",
         "Thanks, that solved it!", "Do you ship to Portugal?", "I want to return the shoes, they are too small.")


@dataclass
class Workload:
    """The records, in production order, and what a correct pipeline must make of them."""

    seed: int
    records: list[tuple[str, bytes, bytes]]
    valid: Counter[str] = field(default_factory=Counter)  # topic -> valid events
    invalid: Counter[str] = field(default_factory=Counter)  # topic -> records that must be dead letters
    invalid_kinds: Counter[str] = field(default_factory=Counter)  # malformed_json / unknown_event_type
    types: Counter[str] = field(default_factory=Counter)  # event type -> valid events
    digest: str = ""
    build_seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.records)

    @property
    def total_valid(self) -> int:
        return sum(self.valid.values())

    @property
    def total_invalid(self) -> int:
        return sum(self.invalid.values())

    @property
    def bytes_total(self) -> int:
        return sum(len(v) for _, _, v in self.records)

    @property
    def topics(self) -> list[str]:
        return sorted({t for t, _, _ in self.records})


def _iso(epoch: float) -> str:
    millis = int(epoch * 1000)
    seconds, ms = divmod(millis, 1000)
    day, in_day = divmod(seconds, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
    hours, rest = divmod(in_day, 3600)
    return f"{prefix}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{ms:03d}Z"


_DAYS: dict[int, str] = {}


def _customer(rng: random.Random, customers: int) -> str:
    # Skewed activity: a few customers are busy, most are not.
    return f"c{int(customers * rng.random() ** 2):05d}"


def _clickstream(rng: random.Random, base: dict[str, object], r: float) -> dict[str, object]:
    event = {**base, "session_id": f"s{rng.getrandbits(32):08x}"}
    channel = rng.choice(_CHANNELS)
    if channel != "web":  # the default is left out, as shops do
        event["channel"] = channel
    if r < 0.36:
        event["type"] = "page_view"
        event["device"] = rng.choice(_DEVICES)
        event["page_url"] = rng.choice(_PAGES)
        referrer = rng.choice(_REFERRERS)
        if referrer:
            event["referrer"] = referrer
        return event
    if r < 0.88:
        product = rng.randrange(50_000)
        event["product_id"] = f"p{product:05d}"
        event["category_id"] = f"k{product % 300:03d}"
        if product % 3 == 0:
            event["brand"] = _BRANDS[product % len(_BRANDS)]
        event["price"] = round(5 + (product % 997) * 0.37, 2)
        event["currency"] = "EUR"
        if r < 0.78:
            event["type"] = "product_view"
        else:
            event["type"] = "add_to_cart"
            event["quantity"] = 1 + (rng.random() < 0.2)
        return event
    event["type"] = "search"
    event["query"] = rng.choice(_QUERIES)
    event["results"] = rng.randrange(200)
    return event


def _order(rng: random.Random, base: dict[str, object]) -> dict[str, object]:
    items = []
    for _ in range(1 + int(rng.random() * 3)):
        product = rng.randrange(50_000)
        items.append({"product_id": f"p{product:05d}", "category_id": f"k{product % 300:03d}",
                      "quantity": 1 + (rng.random() < 0.15), "unit_price": round(5 + (product % 997) * 0.37, 2)})
    amount = round(sum(i["unit_price"] * i["quantity"] for i in items), 2)  # type: ignore[operator]
    return {**base, "type": "order_placed", "order_id": f"o{rng.getrandbits(40):010x}", "currency": "EUR",
            "amount": amount, "items": items, "freight": round(rng.random() * 9, 2), "channel": rng.choice(_CHANNELS)}


def _chat(rng: random.Random, base: dict[str, object]) -> dict[str, object]:
    return {**base, "type": "chat_message", "conversation_id": f"v{rng.getrandbits(32):08x}",
            "sender_role": "customer" if rng.random() < 0.6 else "agent", "channel": "live_chat",
            "text": rng.choice(_CHAT), "language": "en"}


def generate(events: int = DEFAULT_EVENTS, seed: int = DEFAULT_SEED, customers: int = CUSTOMERS,
             invalid_ratio: float = INVALID_RATIO) -> Workload:
    """Build ``events`` records deterministically from ``seed``."""
    started = time.perf_counter()
    rng = random.Random(seed)
    bad = set(rng.sample(range(events), max(1, round(events * invalid_ratio)) if events else 0))
    work = Workload(seed=seed, records=[])
    step = SPAN_SECONDS / max(events, 1)
    digest = hashlib.blake2b(digest_size=16)
    for i in range(events):
        customer = _customer(rng, customers)
        base: dict[str, object] = {"event_id": f"e{i:07d}{rng.getrandbits(24):06x}", "customer_id": customer,
                                   "event_time": _iso(START_EPOCH + i * step + rng.random())}
        r = rng.random()
        if r < 0.91:
            topic, event = "clickstream", _clickstream(rng, base, r / 0.91)
        elif r < 0.97:
            topic, event = "orders", _order(rng, base)
        else:
            topic, event = "chat", _chat(rng, base)
        if i in bad:
            if sum(work.invalid_kinds.values()) % 2 == 0:
                value = orjson.dumps(event)[:-9]  # cut off mid-object: not JSON
                work.invalid_kinds["malformed_json"] += 1
            else:
                event["type"] = "teleport"
                value = orjson.dumps(event)
                work.invalid_kinds["unknown_event_type"] += 1
            work.invalid[topic] += 1
        else:
            value = orjson.dumps(event)
            work.valid[topic] += 1
            work.types[str(event["type"])] += 1
        key = customer.encode()
        work.records.append((topic, key, value))
        digest.update(value)
    work.digest = digest.hexdigest()
    work.build_seconds = time.perf_counter() - started
    return work


_HEADER = struct.Struct("<BHI")  # topic index, key length, value length


def save(work: Workload, path: Path) -> None:
    """Write the records (length-prefixed) and the expectations (``<path>.json``) for other processes."""
    topics = work.topics
    index = {t: i for i, t in enumerate(topics)}
    with path.open("wb") as out:
        for topic, key, value in work.records:
            out.write(_HEADER.pack(index[topic], len(key), len(value)))
            out.write(key)
            out.write(value)
    meta = {"seed": work.seed, "topics": topics, "digest": work.digest, "valid": dict(work.valid),
            "invalid": dict(work.invalid), "invalid_kinds": dict(work.invalid_kinds), "types": dict(work.types),
            "total": work.total}
    path.with_suffix(".json").write_bytes(orjson.dumps(meta))


def load(path: Path) -> Workload:
    """Read what :func:`save` wrote, checking the digest."""
    meta = orjson.loads(path.with_suffix(".json").read_bytes())
    topics = meta["topics"]
    data = path.read_bytes()
    records: list[tuple[str, bytes, bytes]] = []
    digest = hashlib.blake2b(digest_size=16)
    pos, size, unpack = 0, len(data), _HEADER.unpack_from
    while pos < size:
        t, klen, vlen = unpack(data, pos)
        pos += _HEADER.size
        key = data[pos:pos + klen]
        value = data[pos + klen:pos + klen + vlen]
        pos += klen + vlen
        records.append((topics[t], key, value))
        digest.update(value)
    if digest.hexdigest() != meta["digest"] or len(records) != meta["total"]:
        raise ValueError(f"workload file {path} is damaged (digest or count differs)")
    return Workload(seed=meta["seed"], records=records, valid=Counter(meta["valid"]),
                    invalid=Counter(meta["invalid"]), invalid_kinds=Counter(meta["invalid_kinds"]),
                    types=Counter(meta["types"]), digest=meta["digest"])
