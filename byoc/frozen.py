"""The garbage collector's window for a long run of threads: what exists when it starts is frozen
(left out of full passes), young objects are collected less often, both undone when the last run
that overlaps ends."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def long_lived_frozen() -> Iterator[None]:
    """While an apply's operations or a fleet's clusters run, the objects that already exist (the
    SDK's service models, clients, the plan) are left out of the garbage collector's full passes,
    each of which would otherwise stop every worker for tens of milliseconds; they are handed back
    afterwards. The young generation is collected every 20,000 allocations instead of 700
    meanwhile (the SDK makes thousands of short-lived objects per call: at 30 nodes, about 130
    passes become 8).

    The collector is the process's: runs that overlap in one process (engines in threads) share one
    setting, made by the first to start and undone by the last to end, so none of them puts back
    another's values while that one still runs."""
    with _GC_LOCK:
        if not _GC_SAVED:
            gc.freeze()
            threshold = gc.get_threshold()
            _GC_SAVED.append(threshold)
            gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
        _GC_RUNS[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_RUNS[0] -= 1
            if _GC_RUNS[0] == 0:
                gc.set_threshold(*_GC_SAVED.pop())
                gc.unfreeze()


#: the collector's settings before the first of the runs under way, and how many run
_GC_LOCK = threading.Lock()
_GC_SAVED: list[tuple[int, ...]] = []
_GC_RUNS = [0]
