"""Baseline 1, naive faust: one event at a time; decode JSON, validate with the contract, count per customer.

This is what a faust user would write. Run by the harness as
``python -m tests.bench.faust_naive worker -l info`` (settings from BENCH_* env, see faust_common).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from schemas.registry import INPUT_TOPICS
from tests.bench.faust_common import TOPICS, Progress, make_app

app = make_app()
source = app.topic(*TOPICS, key_serializer="raw", value_serializer="raw")
events_per_customer = app.Table("events_per_customer", default=int)
progress = Progress()


@app.agent(source)
async def count_events(stream: Any) -> None:
    async for event in stream.events():
        try:
            valid = INPUT_TOPICS[event.message.topic].adapter.validate_python(orjson.loads(event.value))
        except (orjson.JSONDecodeError, ValidationError):
            progress.add(0, 1)
            continue
        events_per_customer[valid.customer_id] += 1
        progress.add(1, 0)


if __name__ == "__main__":
    app.main()
