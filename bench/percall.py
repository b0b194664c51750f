"""byoc's own CPU per node of an apply: specs/prod.yaml applied at 1 and N nodes against the
benchmark's moto behind its proxy (0 ms per call), with byoc's, moto's and the proxy's CPU.

Usage: python bench/percall.py [--nodes 1,30] [--runs 3] [--delay 0] [--profile OUT] [--yappi OUT]
Prints one line per apply and, per size, the medians; the per-node figure is
(CPU at N - CPU at 1) / (N - 1). ``--profile OUT`` records the largest apply of the last run with
py-spy (``--gil``, raw collapsed stacks; $PYSPY or /tmp/pyspy/bin/py-spy) and prints the functions
with the most samples, self and inclusive (PYSPY_FLAGS replaces ``--gil``). ``--yappi OUT`` writes
yappi's CPU profile of every thread instead (yappi installed by hand; slow, but per thread).
Measurements, never tests.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.awsproxy import ProxyProcess  # noqa: E402
from bench.run import CREDENTIALS, SPEC, cpu_seconds, reset, start_moto  # noqa: E402


def apply_once(proxy: ProxyProcess, moto_pid: int | None, nodes: int, state_dir: Path,
               profile: str | None = None, yappi_out: str | None = None) -> dict[str, Any]:
    """Plan and apply ``nodes`` nodes; the apply's CPU (byoc, moto, proxy), wall and calls."""
    from byoc.aws.context import AwsContext
    from byoc.engine import Engine
    from byoc.model import DEFAULT_PARALLELISM
    from byoc.spec import load_spec
    from byoc.state.local import LocalBackend

    spec = load_spec(str(SPEC), [f"compute.instance_count={nodes}"])
    ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, parallelism=DEFAULT_PARALLELISM)
    engine = Engine(spec, ctx=ctx, backend=LocalBackend(state_dir, spec.cluster_name))
    plan = engine.plan()
    proxy.take()
    spy = None
    if profile:
        flags = os.environ.get("PYSPY_FLAGS", "--gil").split()
        spy = subprocess.Popen([os.environ.get("PYSPY", "/tmp/pyspy/bin/py-spy"), "record", "-p",
                                str(os.getpid()), "-r", "500", *flags, "--format", "raw", "-o", profile],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    proxy_pid = proxy.proc.pid
    started, cpu, times = time.monotonic(), time.process_time(), os.times()
    moto_cpu, proxy_cpu = cpu_seconds(moto_pid), cpu_seconds(proxy_pid)
    if yappi_out:  # yappi, CPU clock, every thread
        import yappi  # type: ignore[import-not-found]

        yappi.set_clock_type("cpu")
        yappi.start(builtins=False)
        result = engine.apply(plan)
        yappi.stop()
        with open(yappi_out, "w") as out:
            columns = {0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8), 4: ("tavg", 8)}
            yappi.get_func_stats().print_all(out=out, columns=columns)
        yappi.clear_stats()
    else:
        result = engine.apply(plan)
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    sys_cpu = os.times().system - times.system
    moto_cpu, proxy_cpu = cpu_seconds(moto_pid) - moto_cpu, cpu_seconds(proxy_pid) - proxy_cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    if not result.ok:
        raise SystemExit(f"apply failed: {[str(f.error) for f in result.failures]}")
    return {"nodes": nodes, "wall": wall, "cpu": cpu, "sys_cpu": sys_cpu, "moto_cpu": moto_cpu,
            "proxy_cpu": proxy_cpu, "calls": len(proxy.take())}


def summarise(path: str, top: int = 25) -> str:
    """The functions with the most samples in a py-spy raw file: self and inclusive."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{total} samples", "self:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("inclusive:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top * 2)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1,30")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay", type=float, default=0.0, help="per-call delay in ms")
    ap.add_argument("--profile", metavar="OUT", help="py-spy raw output of the last, largest apply")
    ap.add_argument("--yappi", metavar="OUT", help="yappi's CPU profile (all threads) of that apply, as text")
    args = ap.parse_args(argv)
    sizes = [int(n) for n in args.nodes.split(",")]
    os.environ.update(CREDENTIALS)
    proc, moto_url = start_moto()
    proxy = ProxyProcess(moto_url)
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    proxy.delay = args.delay / 1000
    seen: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    try:
        for i in range(args.runs):
            for n in sizes:
                reset(moto_url)
                last = i == args.runs - 1 and n == max(sizes)
                with tempfile.TemporaryDirectory() as tmp:
                    rec = apply_once(proxy, proc.pid if proc else None, n, Path(tmp),
                                     args.profile if last else None, args.yappi if last else None)
                seen[n].append(rec)
                print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in rec.items()), flush=True)
    finally:
        proxy.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    med = {n: {k: statistics.median(r[k] for r in recs) for k in recs[0]} for n, recs in seen.items()}
    for n, m in med.items():
        print(f"median {n:3d} nodes: wall {m['wall']:.3f}  byoc cpu {m['cpu']:.3f} (sys {m['sys_cpu']:.3f})  "
              f"moto cpu {m['moto_cpu']:.3f}  proxy cpu {m['proxy_cpu']:.3f}  calls {m['calls']:.0f}")
    lo, hi = min(sizes), max(sizes)
    if hi > lo:
        per = [(b["cpu"] - a["cpu"]) / (hi - lo) for a, b in zip(seen[lo], seen[hi], strict=True)]
        print(f"byoc cpu per node past the first: median {1000 * statistics.median(per):.1f} ms "
              f"(runs: {', '.join(f'{1000 * p:.1f}' for p in per)})")
    if args.profile:
        print(summarise(args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
