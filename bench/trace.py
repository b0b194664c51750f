"""Attribute every AWS call to the operation that made it, and compute critical-path bounds.

Kinds are wrapped so each worker thread knows which operation (address, phase) or which
discovery (``discover``, kind) it is running; a botocore ``before-call`` hook then records
(operation, service, action). The critical-path bound of an apply is the longest path through
the plan's operation graph with each operation weighted by the calls it made (a kind makes its
calls one after another), times the per-call delay.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from byoc.executor import APPLY, REMOVE, operation_graph
from byoc.model import Live
from byoc.plan import Plan

MAIN = ("main", "")


class Tracer:
    """Knows the current operation of each thread and counts the calls made under it."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()  # op -> calls
        self.actions: Counter[tuple[str, str]] = Counter()  # (service, action) -> calls

    def current(self) -> tuple[str, str]:
        op: tuple[str, str] = getattr(self._local, "op", MAIN)
        return op

    def under(self, op: tuple[str, str]) -> _Under:
        return _Under(self, op)

    def before_call(self, model: Any = None, **kwargs: Any) -> None:
        if model is None:
            return
        with self._lock:
            self.calls[self.current()] += 1
            self.actions[(model.service_model.endpoint_prefix, model.name)] += 1

    def take(self) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        with self._lock:
            calls, actions = self.calls, self.actions
            self.calls, self.actions = Counter(), Counter()
        return calls, actions


class _Under:
    def __init__(self, tracer: Tracer, op: tuple[str, str]) -> None:
        self.tracer, self.op = tracer, op

    def __enter__(self) -> None:
        self.prev = self.tracer.current()
        self.tracer._local.op = self.op

    def __exit__(self, *exc: object) -> None:
        self.tracer._local.op = self.prev


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
