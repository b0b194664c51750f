"""``BYOC_TIMINGS=1``: where a command's wall time went, printed to stderr when it exits.

One line, for the benchmark (bench/run.py's CLI section) and for anyone asking why a run is slow::

    byoc timings: total 0.912 s = start-up 0.031 + imports 0.402 + clients 0.105 + aws 0.291
    + render 0.041 + other 0.042

- start-up: from the process's start to byoc's ``main`` (the interpreter, ``site``, the entry point);
- imports: time inside ``import`` statements on the main thread after that;
- clients: making the SDK's clients (service models included), on whichever thread made them;
- aws: the rest of the time the command's engine work took (discovery, AWS calls, planning);
- render: printing the result;
- other: the remainder (reading the spec and state, click's parsing, exit).

The figures are approximate (the kernel counts a process's start in 10 ms ticks) and cost nothing
when the variable is not set: nothing is measured then.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

ENV = "BYOC_TIMINGS"

_on = False
_main_started = 0.0
_startup = 0.0
_imports = 0.0
_depth = 0
_phases: dict[str, float] = {}
_contexts: list[Any] = []


def enabled() -> bool:
    return _on


def start() -> None:
    """Begin measuring when ``BYOC_TIMINGS`` is set (called first thing in ``main``)."""
    global _on, _main_started, _startup
    if os.environ.get(ENV, "") in ("", "0"):
        return
    if _on:  # a second command in the same process (tests): the import hook is in place already
        _main_started = time.perf_counter()
        return
    _on = True
    _main_started = time.perf_counter()
    _startup = _since_process_start()
    main_thread = threading.main_thread()
    original = builtins.__import__

    def timed_import(*args: Any, **kwargs: Any) -> Any:
        global _imports, _depth
        if threading.current_thread() is not main_thread or _depth:
            return original(*args, **kwargs)
        _depth += 1
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _depth -= 1
            _imports += time.perf_counter() - began

    builtins.__import__ = timed_import


def _since_process_start() -> float:
    """Seconds since this process started (from /proc, in clock ticks); 0 where unknown."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def track(ctx: Any) -> None:
    """Count the client-making time of this AWS context (see ``AwsContext.client_seconds``)."""
    if _on:
        _contexts.append(ctx)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as ``name`` ("aws" or "render"); imports made inside it count as imports."""
    if not _on:
        yield
        return
    began, imported = time.perf_counter(), _imports
    try:
        yield
    finally:
        _phases[name] = _phases.get(name, 0.0) + time.perf_counter() - began - (_imports - imported)


def report() -> None:
    """Print the line (see the module's doc) to stderr, when measuring."""
    if not _on:
        return
    total = _startup + time.perf_counter() - _main_started
    clients = sum(float(getattr(c, "client_seconds", 0.0)) for c in _contexts)
    aws = max(0.0, _phases.get("aws", 0.0) - clients)
    render = _phases.get("render", 0.0)
    other = max(0.0, total - _startup - _imports - clients - aws - render)
    parts = {"start-up": _startup, "imports": _imports, "clients": clients, "aws": aws,
             "render": render, "other": other}
    sys.stderr.write(f"byoc timings: total {total:.3f} s = "
                     + " + ".join(f"{k} {v:.3f}" for k, v in parts.items()) + "\n")
