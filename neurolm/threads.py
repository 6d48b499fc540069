"""One helper thread per process and purpose (source hashing, FFT staging), remade in a forked child.

Threads do not survive ``os.fork``: ingestion forks a child per batch, and a pool inherited from the
parent would hold a dead thread, so each pool remembers the process that made it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[str, tuple[int, ThreadPoolExecutor]] = {}


def process_thread(name: str) -> ThreadPoolExecutor:
    """This process's single-thread executor for ``name`` (also its threads' name prefix)."""
    pool = _POOLS.get(name)
    if pool is None or pool[0] != os.getpid():
        pool = _POOLS[name] = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix=name))
    return pool[1]
