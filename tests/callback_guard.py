"""A confluent-kafka consumer that records (and refuses) a call on itself from inside one of its callbacks.

confluent-kafka keeps one call state per client and thread: ``consume`` opens it, the rebalance
and statistics callbacks run inside it, and a call that opens its own (``list_topics``, ``poll``,
``consume``, ``close``, ...) from such a callback ends the outer one; the next callback of that
``consume`` then aborts the process (``CallState_get: Assertion 'cs != NULL' failed``), only
sometimes, depending on timing. This guard makes every such call fail at once, every time.

``commit``, ``committed`` and ``position`` are allowed: they release the GIL without a call state
(see ``Consumer_commit`` in confluent-kafka's source), and committing before a revocation
completes is what the eager protocol needs. Calls on another client (a producer, a second
consumer) are safe too: each client has its own call state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer

#: Consumer methods a callback may call on its own consumer: each releases the GIL without a call state (or
#: never blocks), in confluent-kafka 2.x's Consumer.c.
ALLOWED_IN_CALLBACK = frozenset({"commit", "committed", "position", "assignment", "memberid"})
_CALLBACK_KEYS = ("stats_cb", "error_cb", "throttle_cb")


def guarded_consumer(violations: list[str]) -> type[Consumer]:
    """A Consumer class whose calls from inside its own callbacks are appended to ``violations`` and raise."""
    inside = threading.local()

    def in_callback() -> bool:
        return getattr(inside, "depth", 0) > 0

    def wrap_callback(name: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            inside.depth = getattr(inside, "depth", 0) + 1
            try:
                return callback(*args)
            finally:
                inside.depth -= 1
        run.__name__ = name
        return run

    def guard(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Consumer, *args: Any, **kwargs: Any) -> Any:
            if in_callback():
                violations.append(name)
                raise AssertionError(f"Consumer.{name}() called from inside a callback of the same consumer")
            return method(self, *args, **kwargs)
        call.__name__ = name
        return call

    class GuardedConsumer(Consumer):
        def __init__(self, config: dict[str, Any]) -> None:
            config = dict(config)
            for key in _CALLBACK_KEYS:
                if key in config:
                    config[key] = wrap_callback(key, config[key])
            super().__init__(config)

        def subscribe(self, topics: list[str], **callbacks: Any) -> None:  # type: ignore[override]
            if in_callback():
                violations.append("subscribe")
                raise AssertionError("Consumer.subscribe() called from inside a callback of the same consumer")
            wrapped = {k: wrap_callback(k, v) for k, v in callbacks.items()}
            super().subscribe(topics, **wrapped)

    for name in dir(Consumer):
        if name.startswith("_") or name in ALLOWED_IN_CALLBACK or name == "subscribe":
            continue
        if callable(getattr(Consumer, name)):
            setattr(GuardedConsumer, name, guard(name, getattr(Consumer, name)))
    return GuardedConsumer
