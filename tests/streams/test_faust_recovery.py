"""The fixed end of faust's table recovery seeks the input partitions before it resumes them.

A unit test of the order of calls (a recording stand-in for faust's app and consumer); the
integration test that needs it is the SIGKILL restart of the faust host
(tests/integration/test_faust_host.py).
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

from tests.conftest import require_extra

require_extra("faust", "bench")

from faust.tables.recovery import Recovery  # noqa: E402

from streams import faust_recovery  # noqa: E402

INPUT = ("clickstream", 0)
CHANGELOG = ("app-customer-state-changelog", 0)


def recording_recovery(calls: list[str], generation: int = 1) -> Any:
    async def perform_seek() -> None:
        calls.append("seek")

    async def no_op(*_: Any, **__: Any) -> None:
        return None

    async def wait(coro: Any, timeout: float | None = None) -> Any:
        return await coro

    consumer = SimpleNamespace(
        assignment=lambda: {INPUT, CHANGELOG},
        perform_seek=perform_seek,
        resume_partitions=lambda tps: calls.append(f"resume_partitions {sorted(tps)}"),
        resume_flow=lambda: calls.append("resume_flow"))
    app = SimpleNamespace(
        consumer=consumer, consumer_generation_id=generation, conf=SimpleNamespace(broker_request_timeout=5.0),
        on_rebalance_complete=SimpleNamespace(send=no_op),
        flow_control=SimpleNamespace(resume=lambda: calls.append("flow_control.resume (empties buffers)")),
        _fetcher=SimpleNamespace(maybe_start=no_op),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
        on_rebalance_end=lambda: calls.append("rebalance_end"))
    return SimpleNamespace(
        app=app, log=logging.getLogger("test"), tables={}, _wait=wait,
        _set_recovery_ended=lambda: None, completed=SimpleNamespace(set=lambda: calls.append("completed")),
        _is_changelog_tp=lambda tp: tp == CHANGELOG)


def test_inputs_are_seeked_then_buffers_emptied_then_resumed() -> None:
    calls: list[str] = []
    recovery = recording_recovery(calls)
    recovery.tables = SimpleNamespace(values=lambda: [], on_actives_ready=lambda: calls.append("actives_ready"),
                                      on_standbys_ready=lambda: None)
    asyncio.run(faust_recovery.on_recovery_completed(recovery, generation_id=1))
    assert calls == ["seek", "completed", "flow_control.resume (empties buffers)",
                     f"resume_partitions {[INPUT]}", "resume_flow", "actives_ready", "rebalance_end"]


def test_a_newer_rebalance_leaves_the_inputs_paused() -> None:
    calls: list[str] = []
    recovery = recording_recovery(calls, generation=2)
    recovery.tables = SimpleNamespace(values=lambda: [])
    asyncio.run(faust_recovery.on_recovery_completed(recovery, generation_id=1))
    assert calls == []


def test_install_replaces_fausts_method_once() -> None:
    original = Recovery.on_recovery_completed
    try:
        faust_recovery.install()
        faust_recovery.install()
        assert Recovery.on_recovery_completed is faust_recovery.on_recovery_completed
    finally:
        Recovery.on_recovery_completed = original  # type: ignore[method-assign]
