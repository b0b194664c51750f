"""A timeline of one apply: when each operation ran, when each of its calls did, and how many calls
were in flight meanwhile — what showed that a 30-node apply's operations spent as long waiting as
calling. In-process through the latency-injecting proxy, like ``bench/run.py``.

Usage: python bench/timeline.py [--nodes 30] [--delay 50] [--parallelism 20] [--ops]
Prints the apply's wall time and calls; the seconds spent at each number of calls in flight (a
call counts from botocore's ``before-call`` to its ``after-call``: waiting for a place at the
call gate included); calls started per quarter second; per kind, the seconds its operations took
against the seconds of their own calls; when the nodes launched. ``--ops`` lists every operation.
Timings here are measurements, never tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.awsproxy import ProxyProcess  # noqa: E402
from bench.run import CREDENTIALS, Run, reset, start_moto  # noqa: E402
from bench.trace import Tracer, _Under  # noqa: E402
from byoc.model import DEFAULT_PARALLELISM  # noqa: E402

Op = tuple[str, str]


class TimelineTracer(Tracer):
    """The benchmark's tracer, also keeping each operation's span and each call's."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: dict[Op, list[float]] = {}
        self.calls: list[tuple[Op, str, float, float]] = []

    def under(self, op: Op) -> _Under:
        tracer = self

        class Timed(_Under):
            def __enter__(self) -> None:
                super().__enter__()
                tracer.ops.setdefault(op, [time.monotonic(), 0.0])

            def __exit__(self, *exc: object) -> None:
                tracer.ops[op][1] = time.monotonic()
                super().__exit__(*exc)

        return Timed(self, op)

    def after_call(self, model: Any = None, **kwargs: Any) -> None:
        started = getattr(self._started, "at", None)
        if model is not None and started is not None:
            with self._lock:
                self.calls.append((self.current(), model.name, started, time.monotonic()))
        super().after_call(model=model, **kwargs)

    def clear(self) -> None:
        self.ops.clear()
        self.calls.clear()


def in_flight(calls: list[tuple[Op, str, float, float]], t0: float) -> dict[int, float]:
    """Seconds spent with k calls in flight, per k."""
    edges = sorted([(c[2] - t0, 1) for c in calls] + [(c[3] - t0, -1) for c in calls])
    spent: dict[int, float] = defaultdict(float)
    now, last = 0, 0.0
    for at, step in edges:
        spent[now] += at - last
        now, last = now + step, at
    return dict(sorted(spent.items()))


def report(tracer: TimelineTracer, t0: float, wall: float, list_ops: bool) -> str:
    calls, ops = tracer.calls, tracer.ops
    lines = [f"apply: {wall:.3f} s, {len(calls)} calls, {len(ops)} operations"]
    flight = in_flight(calls, t0)
    mean = sum(k * s for k, s in flight.items()) / wall if wall else 0.0
    lines.append(f"calls in flight, mean {mean:.1f}; seconds at each count: "
                 + ", ".join(f"{k}: {s:.2f}" for k, s in flight.items() if s >= 0.005))
    quarters = Counter(int((c[2] - t0) / 0.25) for c in calls)
    started = " ".join(str(quarters[i]) for i in range(int(wall / 0.25) + 1))
    lines.append(f"calls started per 0.25 s: {started}")
    per_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    own: dict[Op, float] = defaultdict(float)
    for op, _name, start, end in calls:
        own[op] += end - start
    for op, (start, end) in ops.items():
        kind = per_kind[op[0].split(".")[0]]
        kind[0] += 1
        kind[1] += end - start
        kind[2] += own.get(op, 0.0)
    lines.append("kind                                 ops  op s   own calls s")
    for name, (n, op_s, call_s) in sorted(per_kind.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"{name:36s} {n:4.0f} {op_s:6.2f} {call_s:7.2f}")
    nodes = [span for op, span in ops.items() if op[0].startswith("aws_instance.")]
    if nodes:
        lines.append(f"nodes: first launch started {min(s for s, _ in nodes) - t0:.3f} s, "
                     f"last running {max(e for _, e in nodes) - t0:.3f} s")
    if list_ops:
        for op, (start, end) in sorted(ops.items(), key=lambda kv: kv[1][0]):
            mine = Counter(c[1] for c in calls if c[0] == op)
            lines.append(f"{start - t0:6.3f} {end - t0:6.3f} {op[0]} {op[1]} {dict(mine)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=30)
    ap.add_argument("--delay", type=float, default=50, help="per-call delay in ms")
    ap.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    ap.add_argument("--ops", action="store_true", help="list every operation with its span and calls")
    args = ap.parse_args(argv)
    os.environ.update(CREDENTIALS)
    proc, url = start_moto()
    proxy = ProxyProcess(url)
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    try:
        reset(url)
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: first uses of each service, unmeasured
            Run(proxy, 1, args.parallelism, Path(tmp)).lifecycle()
        proxy.delay = args.delay / 1000
        reset(url)
        with tempfile.TemporaryDirectory() as tmp:
            tracer = TimelineTracer()
            run = Run(proxy, args.nodes, args.parallelism, Path(tmp), tracer=tracer)
            plan, _ = run.plan("plan")
            tracer.clear()
            t0 = time.monotonic()
            result = run.engine.apply(plan)
            wall = time.monotonic() - t0
            if not result.ok:
                raise SystemExit(f"apply failed: {[str(f.error) for f in result.failures]}")
            print(report(tracer, t0, wall, args.ops))
    finally:
        proxy.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
