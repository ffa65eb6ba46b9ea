"""The commit sequence of a stateful worker as one object (model: Quix Streams' ``checkpointing/checkpoint.py``).

A checkpoint covers the input records applied since the previous one. Closing it is, in order:

1. flush the outputs and the changelog: every key changed since the last checkpoint has its
   state written to the changelog and its coalesced outputs produced (the host does this and
   numbers each produced record with :meth:`Checkpoint.produced`);
2. close: :meth:`Checkpoint.close` takes the input offsets (next offset to read, per partition)
   the checkpoint covers, tagged with the number of the last record produced so far;
3. commit: :meth:`Checkpoint.committable` hands back the offsets of the closed checkpoints whose
   records the broker has all acknowledged (:meth:`Checkpoint.acknowledged`), oldest first,
   merged; the host commits them.

Invariants:

- **No commit before its writes.** Offsets are committable only once every record produced up to
  their checkpoint's close is acknowledged, so a committed offset never covers a state or an output
  the broker does not hold. (A crash before the commit re-reads the records; the changelog's
  per-key applied offsets skip what the restored state already holds: at-least-once outputs,
  exactly-once state, without transactions.)
- **In order.** Checkpoints commit oldest first; a younger one never commits past an older one
  still waiting (its records would be covered by a later offset).
- **A failed delivery commits nothing.** Once any record failed, :meth:`committable` raises and
  nothing more is committed: the worker stops, and the next owner redoes the uncommitted records.
- **Finished means empty.** :meth:`finished` (at revocation and shutdown) raises unless every
  record is acknowledged and every closed checkpoint committed.
"""

from __future__ import annotations

from collections import deque

#: (topic, partition) -> the next offset to read.
Offsets = dict[tuple[str, int], int]


class Checkpoint:
    """The produced-but-unacknowledged records and the closed, uncommitted checkpoints of one worker."""

    def __init__(self) -> None:
        self.sequence = 0  # records produced so far; each one's number until the broker acknowledges it
        self.unacknowledged: set[int] = set()
        self.closed: deque[tuple[int, Offsets]] = deque()  # (last record produced before the close, offsets)
        self.errors: list[str] = []

    def produced(self) -> int:
        """Number one more record handed to the producer; pass it to :meth:`acknowledged` on delivery."""
        self.sequence += 1
        self.unacknowledged.add(self.sequence)
        return self.sequence

    def acknowledged(self, sequence: int, error: str | None = None) -> None:
        """The broker's answer for record ``sequence``: stored, or ``error``."""
        if error is not None:
            self.errors.append(error)
        else:
            self.unacknowledged.discard(sequence)

    def close(self, offsets: Offsets) -> None:
        """Close a checkpoint over ``offsets``: committable once every record produced so far is acknowledged."""
        if offsets:
            self.closed.append((self.sequence, offsets))

    @property
    def waiting(self) -> bool:
        """Whether a closed checkpoint is not committed yet."""
        return bool(self.closed)

    def oldest_unacknowledged(self) -> int:
        """The number of the oldest record not yet acknowledged (one past the last produced: none)."""
        return min(self.unacknowledged, default=self.sequence + 1)

    def committable(self) -> Offsets:
        """The offsets of the closed checkpoints whose records are all acknowledged, oldest first, merged."""
        if self.errors:
            raise RuntimeError(f"changelog/outputs not acknowledged (errors: {self.errors[:3]}); "
                               "offsets not committed")
        oldest = self.oldest_unacknowledged()
        offsets: Offsets = {}
        while self.closed and self.closed[0][0] < oldest:
            offsets.update(self.closed.popleft()[1])
        return offsets

    def finished(self, remaining: int) -> None:
        """Raise unless everything is acknowledged (``remaining`` records still in the producer) and committed."""
        if remaining or self.closed:
            raise RuntimeError(f"changelog/outputs not acknowledged ({remaining} pending, errors: {self.errors[:3]});"
                               " offsets not committed")
