"""What a processor gives its host to produce: (topic, key, value) records."""

from __future__ import annotations

#: A record to produce: (topic, key, value).
Output = tuple[str, bytes | None, bytes]
#: A record an erasure produces: a tombstone (value None) on a compacted topic, or an audit record.
ErasureOutput = tuple[str, bytes | None, bytes | None]
