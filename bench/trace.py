"""Attribute every AWS call to the operation that made it, and compute critical-path bounds.

Kinds are wrapped so each worker thread knows which operation (address, phase) or which
discovery (``discover``, kind) it is running — in a context variable, which the threads of
``AwsContext.together`` inherit; a botocore ``before-call`` hook then records
(operation, service, action) and an ``after-call`` hook the call's end. An operation's weight is
its chain of dependent calls: the most of its calls that ran one after another (calls it made side
by side, overlapping in time, are one link, not several). The critical-path bound of an apply is
the longest path through the plan's operation graph so weighted, times the per-call delay.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from byoc.executor import APPLY, REMOVE, operation_graph
from byoc.model import Live
from byoc.plan import Plan

MAIN = ("main", "")


class Tracer:
    """Knows the current operation of each thread and times the calls made under it."""

    def __init__(self) -> None:
        self._op: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("bench_op", default=MAIN)
        self._lock = threading.Lock()
        self._started = threading.local()
        self.spans: dict[tuple[str, str], list[tuple[float, float]]] = {}  # op -> (start, end) of calls
        self.actions: Counter[tuple[str, str]] = Counter()  # (service, action) -> calls

    def current(self) -> tuple[str, str]:
        return self._op.get()

    def under(self, op: tuple[str, str]) -> _Under:
        return _Under(self, op)

    def before_call(self, model: Any = None, **kwargs: Any) -> None:
        if model is None:
            return
        self._started.at = time.monotonic()
        with self._lock:
            self.actions[(model.service_model.endpoint_prefix, model.name)] += 1

    def after_call(self, model: Any = None, **kwargs: Any) -> None:
        started = getattr(self._started, "at", None)
        if model is None or started is None:
            return
        self._started.at = None
        with self._lock:
            self.spans.setdefault(self.current(), []).append((started, time.monotonic()))

    def hooks(self) -> list[tuple[str, Any]]:
        """The botocore event hooks to register (AwsContext's ``event_hooks``)."""
        return [("before-call", self.before_call), ("after-call", self.after_call),
                ("after-call-error", self.after_call)]

    def take(self) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        """(op -> its chain of dependent calls, (service, action) -> calls) since the last take."""
        with self._lock:
            spans, actions = self.spans, self.actions
            self.spans, self.actions = {}, Counter()
        return Counter({op: sequential(s) for op, s in spans.items()}), actions


def sequential(spans: list[tuple[float, float]]) -> int:
    """The most calls that ran one after another: the largest set of spans none of which
    overlap (earliest end first); calls made side by side count once."""
    count, free_from = 0, float("-inf")
    for start, end in sorted(spans, key=lambda s: s[1]):
        if start >= free_from:
            count, free_from = count + 1, end
    return count


class _Under:
    def __init__(self, tracer: Tracer, op: tuple[str, str]) -> None:
        self.tracer, self.op = tracer, op

    def __enter__(self) -> None:
        self.token = self.tracer._op.set(self.op)

    def __exit__(self, *exc: object) -> None:
        self.tracer._op.reset(self.token)


class TracedKind:
    """A kind that tells the tracer which operation its thread runs; everything else delegates."""

    def __init__(self, inner: Any, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def discover(self, ctx: Any) -> list[Live]:
        with self._tracer.under(("discover", self._inner.kind)):
            return self._inner.discover(ctx)  # type: ignore[no-any-return]

    def create(self, ctx: Any, address: str, props: Mapping[str, Any]) -> Live:
        with self._tracer.under((address, APPLY)):
            return self._inner.create(ctx, address, props)  # type: ignore[no-any-return]

    def update(self, ctx: Any, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        with self._tracer.under((live.address, APPLY)):
            return self._inner.update(ctx, live, props, changed)  # type: ignore[no-any-return]

    def delete(self, ctx: Any, live: Live) -> None:
        with self._tracer.under((live.address, REMOVE)):
            self._inner.delete(ctx, live)

    def find(self, ctx: Any, address: str) -> Live | None:
        with self._tracer.under((address, APPLY)):
            return self._inner.find(ctx, address)  # type: ignore[no-any-return]


def apply_chain(plan: Plan, calls: Mapping[tuple[str, str], int]) -> tuple[int, list[str]]:
    """The longest chain of dependent calls of an apply: (calls, the operations on it)."""
    g = operation_graph(plan)
    best: dict[Any, tuple[int, Any]] = {}
    import networkx as nx

    for op in nx.topological_sort(g):
        before = max(((best[p][0], p) for p in g.predecessors(op)), default=(0, None))
        best[op] = (before[0] + calls.get(op, 0), before[1])
    if not best:
        return 0, []
    end = max(best, key=lambda op: best[op][0])
    total = best[end][0]
    path: list[str] = []
    step: Any = end
    while step is not None:
        path.append(f"{step[0]} ({step[1]}, {calls.get(step, 0)} calls)")
        step = best[step][1]
    return total, path[::-1]


def plan_chain(calls: Mapping[tuple[str, str], int]) -> int:
    """The longest chain of a plan: the kinds discover side by side, then the main thread reads
    (e.g. the AMI lookup). A kind waiting on a describe another kind memoised is not counted."""
    discover = max((n for op, n in calls.items() if op[0] == "discover"), default=0)
    return discover + calls.get(MAIN, 0)
