"""A fix to faust-streaming's end of table recovery: seek the input partitions before reading them again.

faust pauses the input (stream) partitions while it restores tables from their changelogs,
but only at its own level: the Kafka client keeps records it fetched for them when the
partitions were assigned. When recovery completes, faust 0.15.3
(``Recovery.on_recovery_completed``) resumes the input partitions first and only then
seeks them to their committed offsets, one OffsetFetch per partition, and resumes its flow
control last, which empties the streams' buffers. So records fetched before the seek reach
the agents while it runs: faust's read position jumps back at the seek, the records already
in flight look like a hole in the partition (faust fills such holes in as acknowledged, so
the same offsets are then acknowledged twice), and records delivered just before the
buffers are emptied are never processed. The first makes the commit offset move by one
offset per commit interval; the second stops commits for good. A restarted worker then
looks stalled after "Worker ready" (faust-streaming issue 596 describes the same race).

:func:`on_recovery_completed` is faust's own method with the order fixed: seek while the
input partitions are still paused, empty the buffers, then resume the input partitions and
the flow. Nothing else changes. :func:`install` puts it on faust's ``Recovery`` class;
``streams.faust_features`` installs it for its app.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.tables.recovery import Recovery

log = logging.getLogger(__name__)

#: The faust-streaming release whose ``Recovery.on_recovery_completed`` this replaces (pinned in pyproject.toml).
FAUST_VERSION = "0.15.3"


async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    """Call when active table recovery is completed (faust's method, inputs seeked before they are resumed)."""
    app: Any = self.app
    consumer = app.consumer
    self.log.info("Restore complete!")
    await app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                   self.standbys_for_table[table]))
                 for table in self.tables.values()]
    if callbacks:
        await asyncio.wait(callbacks)
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id {app.consumer_generation_id} param {generation_id}")
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
    self.completed.set()
    app.flow_control.resume()  # empties the streams' buffers: nothing of the inputs is in them yet
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    consumer.resume_flow()
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def install() -> None:
    """Replace faust's ``Recovery.on_recovery_completed`` (once; warns on a faust release it was not written for)."""
    if Recovery.on_recovery_completed is on_recovery_completed:  # type: ignore[comparison-overlap]
        return
    if faust.__version__ != FAUST_VERSION:
        log.warning("faust-streaming %s: the recovery fix was written for %s; check streams/faust_recovery.py",
                    faust.__version__, FAUST_VERSION)
    Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]
