"""The AWS calls of one apply, by action: specs/prod.yaml at a few node counts applied against moto
behind bench's proxy, with the apply's wall, byoc's CPU and moto's (medians of ``--repeat`` runs).

Usage: python bench/calls.py [--nodes 1,30] [--delay 50] [--repeat 3] [--recheck] [--root DIR] [--json FILE]
``--root`` measures the byoc of another checkout (e.g. an export of main) with this script.
Measurements, never tests.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any


def measure(nodes: list[int], delay_ms: float, repeat: int, parallelism: int,
            recheck: bool = False) -> list[dict[str, Any]]:
    """Per node count: the apply's calls by action (of the median-wall run) and the medians."""
    from bench.awsproxy import ProxyProcess
    from bench.run import CREDENTIALS, Run, reset, start_moto

    os.environ.update(CREDENTIALS)
    stack = contextlib.ExitStack()
    proc, moto_url = start_moto()
    if proc is not None:
        stack.callback(proc.wait, timeout=10)
        stack.callback(proc.terminate)
    proxy = ProxyProcess(moto_url)
    stack.callback(proxy.stop)
    taken: list[Any] = []
    take = proxy.take

    def keep() -> list[Any]:  # Run.step counts the calls; keep them for moto's time per action
        taken[:] = take()
        return list(taken)

    proxy.take = keep  # type: ignore[method-assign]
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    out = []
    with stack:
        proxy.delay = delay_ms / 1000
        for n in nodes:
            runs = []
            for _ in range(repeat):
                reset(moto_url)
                with tempfile.TemporaryDirectory() as tmp:
                    run = Run(proxy, n, parallelism, Path(tmp), proc.pid if proc else None)
                    plan, _ = run.plan("plan")
                    if recheck:  # as `byoc apply PLANFILE` does: each create looks first
                        run.engine.apply = functools.partial(  # type: ignore[method-assign]
                            run.engine.apply, recheck=True)
                    runs.append(run.apply("apply", plan))
                    moto_ms: dict[str, float] = {}
                    for c in taken:
                        key = f"{c.service}:{c.action}"
                        moto_ms[key] = moto_ms.get(key, 0.0) + c.upstream * 1000
                    runs[-1]["moto_ms"] = {k: round(v) for k, v in moto_ms.items()}
                    noop, rec = run.plan("noop-plan")
                    if noop.has_changes:
                        raise SystemExit(f"the plan after apply is not empty: {noop.counts()}")
                    runs[-1]["noop_calls"] = rec["calls"]
            mid = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
            out.append({
                "nodes": n, "delay_ms": delay_ms, "calls": mid["calls"], "by_action": mid["by_action"],
                "errors": mid["errors"], "moto_ms": mid["moto_ms"], "noop_calls": mid["noop_calls"],
                **{k: round(statistics.median(r[k] for r in runs), 3) for k in ("wall", "cpu", "moto_cpu")},
                "walls": sorted(r["wall"] for r in runs),
            })
            print(f"done: {n} nodes", file=sys.stderr, flush=True)
    return out


def report(cases: list[dict[str, Any]]) -> str:
    actions = sorted({a for c in cases for a in c["by_action"]})
    head = f"{'action (calls, ms in moto)':<44}" + "".join(f"{c['nodes']:>8}{'':>8}" for c in cases)
    lines = [head, "-" * len(head)]
    lines += [f"{a:<44}" + "".join(f"{c['by_action'].get(a, 0):>8}{c['moto_ms'].get(a, 0):>8}" for c in cases)
              for a in actions]
    lines.append("-" * len(head))
    for label, key in (("calls", "calls"), ("wall s (median)", "wall"), ("byoc cpu s (median)", "cpu"),
                       ("moto cpu s (median)", "moto_cpu"), ("no-op plan calls", "noop_calls")):
        lines.append(f"{label:<44}" + "".join(f"{c[key]:>8}{'':>8}" for c in cases))
    lines.append(f"walls: {[c['walls'] for c in cases]}; errors: {[c['errors'] for c in cases]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1,30")
    ap.add_argument("--delay", type=float, default=50.0, help="per-call delay in ms")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=20)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                    help="the checkout whose byoc (and bench) to measure")
    ap.add_argument("--recheck", action="store_true",
                    help="apply as a saved plan is (each create looks first)")
    ap.add_argument("--json", help="also write the cases here")
    args = ap.parse_args(argv)
    sys.path[:0] = [str(Path(args.root).resolve())]
    os.chdir(args.root)
    cases = measure([int(n) for n in args.nodes.split(",")], args.delay, args.repeat, args.parallelism,
                    args.recheck)
    print(report(cases))
    if args.json:
        Path(args.json).write_text(json.dumps(cases, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
