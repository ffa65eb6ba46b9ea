"""Disk-backed state for the stateful workers: a local RocksDB per partition under a bounded cache.

The changelog topic stays the source of truth (streams/stateful.py writes it at every flush);
the local store is a copy of it on the worker's disk, checkpointed with the changelog offset it
has applied, so a restart on the same disk reads only the changelog written since, and a new
machine restores from the changelog in bulk. Only ``state_cache_customers`` states live as
Python objects; the others are read back from disk when their customer's next record arrives.

- ``local.py``: one partition's RocksDB, its layout and its atomic checkpointed writes;
- ``cached.py``: the mapping the worker uses, an LRU cache over the local store;
- ``pending.py``: flushes waiting for the broker's acknowledgements before they go to disk;
- ``restore.py``: opening the stores of assigned partitions and replaying the changelog's tail.
"""

#: Default of the ``state_cache_customers`` setting: live states per worker (BENCHMARKS.md, "State").
DEFAULT_CACHE_CUSTOMERS = 50_000
