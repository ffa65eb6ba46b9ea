"""Baseline 2, faust's own ceiling: ``stream.take(2000, within=0.05)``, raw bytes, nothing but orjson decoding.

Run by the harness as ``python -m tests.bench.faust_ceiling worker -l info`` (BENCH_* env, see faust_common).
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.bench.faust_common import TOPICS, Progress, make_app

app = make_app()
source = app.topic(*TOPICS, key_serializer="raw", value_serializer="raw")
progress = Progress()


@app.agent(source)
async def decode(stream: Any) -> None:
    async for values in stream.take(2000, within=0.05):
        bad = 0
        for value in values:
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:
                bad += 1
        progress.add(len(values) - bad, bad)


if __name__ == "__main__":
    app.main()
