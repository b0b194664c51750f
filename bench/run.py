"""The byoc benchmark: validate → plan → apply → no-op plan → destroy against a moto server behind
a latency-injecting, call-counting proxy, for several cluster sizes and per-call delays.

Usage: python bench/run.py [--nodes 1,3,10,30] [--delays 0,50] [--no-serial] [--repeat N] [--cli-only]
       [--moto-actions]
Writes bench/results/latest.json and prints a table. Timings here are measurements, never tests.
The CLI section runs each command in its own process, as a user does (see ``cli_bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.awsproxy import ProxyProcess  # noqa: E402
from bench.report import step_bounds, table  # noqa: E402
from bench.trace import TracedKind, Tracer, apply_chain, plan_chain  # noqa: E402
from byoc.model import DEFAULT_PARALLELISM  # noqa: E402

SPEC = ROOT / "specs/prod.yaml"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-west-2"}


def start_moto(stock: bool = False) -> tuple[subprocess.Popen[bytes] | None, str]:
    """moto's server on a free port of 127.0.0.1 (AMIs loaded, as the sandbox has them): the
    benchmark's lighter start (bench/fastmoto.py) unless ``stock``."""
    from tests.motoserver import MotoServer

    server = MotoServer("tests.realmoto" if stock else "bench.fastmoto")
    return server.proc, server.url


def reset(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30):
        pass


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of process ``pid`` so far, from /proc; 0 where unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    """One cluster size at one delay and parallelism: the lifecycle, timed and counted."""

    def __init__(self, proxy: ProxyProcess, nodes: int, parallelism: int, state_dir: Path,
                 moto_pid: int | None = None, moto_actions: str | None = None,
                 tracer: Tracer | None = None) -> None:
        from byoc.aws.context import AwsContext
        from byoc.engine import Engine
        from byoc.resources import registry
        from byoc.spec import load_spec
        from byoc.state.local import LocalBackend

        self.proxy = proxy
        self.moto_pid = moto_pid
        self.proxy_pid = getattr(getattr(proxy, "proc", None), "pid", None)
        #: the URL of the moto server's CPU per action (bench/fastmoto.py with BENCH_MOTO_CPU=1)
        self.moto_actions = moto_actions
        self.tracer = tracer or Tracer()
        spec = load_spec(str(SPEC), [f"compute.instance_count={nodes}"])
        kinds = {name: TracedKind(k, self.tracer) for name, k in registry().items()}
        ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, parallelism=parallelism,
                         event_hooks=self.tracer.hooks())
        self.engine = Engine(spec, kinds=kinds, ctx=ctx,  # type: ignore[arg-type]
                             backend=LocalBackend(state_dir, spec.cluster_name), parallelism=parallelism)

    def step(self, name: str, fn: Any) -> tuple[Any, dict[str, Any]]:
        self.proxy.take()
        self.tracer.take()
        self._moto_by_action()
        proxy_cpu = cpu_seconds(self.proxy_pid)
        started, cpu, moto_cpu = time.monotonic(), time.process_time(), cpu_seconds(self.moto_pid)
        value = fn()
        wall = time.monotonic() - started
        cpu, moto_cpu = time.process_time() - cpu, cpu_seconds(self.moto_pid) - moto_cpu
        proxy_cpu = cpu_seconds(self.proxy_pid) - proxy_cpu
        by_moto = self._moto_by_action()
        calls = self.proxy.take()
        per_op, _ = self.tracer.take()
        by_action = Counter(f"{c.service}:{c.action}" for c in calls)
        rec = {"step": name, "wall": round(wall, 3), "calls": len(calls),
               "cpu": round(cpu, 3), "moto_cpu": round(moto_cpu, 3),
               "proxy_cpu": round(proxy_cpu, 3) if self.proxy_pid else None,
               "errors": dict(Counter(f"{c.service}:{c.action}" for c in calls if c.status >= 400)),
               "by_action": dict(sorted(by_action.items())), "per_op": per_op}
        if by_moto is not None:
            rec["moto_by_action"] = by_moto
        return value, rec

    def _moto_by_action(self) -> dict[str, list[float]] | None:
        """moto's CPU per action since the last call ({"service:action": [calls, seconds]})."""
        if not self.moto_actions:
            return None
        import urllib.request

        with urllib.request.urlopen(f"{self.moto_actions}/__bench__/cpu", timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def plan(self, name: str, **options: Any) -> tuple[Any, dict[str, Any]]:
        from byoc.planner import PlanOptions

        plan, rec = self.step(name, lambda: self.engine.plan(PlanOptions(**options)))
        rec["chain"] = plan_chain(rec.pop("per_op"))
        rec["changes"] = sum(plan.counts().values())
        return plan, rec

    def apply(self, name: str, plan: Any) -> dict[str, Any]:
        result, rec = self.step(name, lambda: self.engine.apply(plan))
        if not result.ok:
            raise SystemExit(f"{name} failed: {[str(f.error) for f in result.failures]}")
        rec["chain"], rec["critical_path"] = apply_chain(plan, rec.pop("per_op"))
        return rec

    def lifecycle(self, serial_only: bool = False) -> list[dict[str, Any]]:
        steps = []
        plan, rec = self.plan("plan")
        steps.append(rec)
        steps.append(self.apply("apply", plan))
        if not serial_only:
            noop, rec = self.plan("noop-plan")
            if noop.has_changes:
                raise SystemExit(f"the plan after apply is not empty: {noop.counts()}")
            steps.append(rec)
        plan, rec = self.plan("destroy-plan", destroy=True, allow_data_loss=True)
        steps.append(rec)
        steps.append(self.apply("destroy", plan))
        return steps


def median_steps(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per step, the record of the run with the median wall time (each keeps every wall seen)."""
    if len(runs) == 1:
        return runs[0]
    out = []
    for i in range(len(runs[0])):
        seen = sorted((r[i] for r in runs), key=lambda rec: rec["wall"])
        out.append({**seen[len(seen) // 2], "walls": [rec["wall"] for rec in seen]})
    return out


def startup(runs: int = 5) -> dict[str, float]:
    """Best-of-``runs`` wall time of `byoc --help` and `byoc validate specs/prod.yaml`."""
    out = {}
    for name, args in (("help", ["--help"]), ("validate", ["validate", str(SPEC)])):
        best = float("inf")
        for _ in range(runs):
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "byoc", *args], check=True, capture_output=True, cwd=ROOT)
            best = min(best, time.monotonic() - started)
        out[name] = round(best, 3)
    return out


#: the commands of the CLI section: (name, arguments); {spec} is specs/dev.yaml
CLI_COMMANDS = (("--help", ["--help"]), ("validate", ["validate", "{spec}"]),
                ("plan (no-op)", ["plan", "{spec}"]), ("drift", ["drift", "{spec}"]),
                ("health", ["health", "{spec}"]))


def byoc_command(python: str = sys.executable) -> list[str]:
    """How a user runs byoc from this interpreter's environment: its console script when there is
    one (the entry point's own start-up cost included), else ``python -m byoc``."""
    script = Path(python).parent / "byoc"
    return [str(script)] if script.is_file() else [python, "-m", "byoc"]


def parse_timings(stderr: str) -> dict[str, float]:
    """The parts of the ``byoc timings:`` line a command printed to stderr ({} when none)."""
    line = next((ln for ln in stderr.splitlines() if ln.startswith("byoc timings: total ")), None)
    if line is None:
        return {}
    total, _, parts = line.removeprefix("byoc timings: total ").partition(" s = ")
    out = {"total": float(total)}
    for part in parts.split(" + "):
        name, _, value = part.rpartition(" ")
        out[name] = float(value)
    return out


def cli_bench(runs: int = 5, command: list[str] | None = None, moto_url: str | None = None) -> dict[str, Any]:
    """Each command's wall time from process start to exit, as a user runs it, against an idle
    moto server holding the applied specs/dev.yaml: the median of ``runs`` (after one run not
    counted, which also fills the SDK model cache), and the median of each part byoc reports
    with BYOC_TIMINGS=1. The child's environment is the user's: bytecode caches are written."""
    import statistics

    command = command or byoc_command()
    proc = None
    if moto_url is None:
        proc, moto_url = start_moto(stock=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(CREDENTIALS, AWS_ENDPOINT_URL=moto_url, NO_COLOR="1", BYOC_TIMINGS="1")
    out: dict[str, Any] = {"runs": runs, "command": " ".join(Path(c).name for c in command), "commands": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = str(ROOT / "specs/dev.yaml")
            subprocess.run([*command, "apply", spec, "--auto-approve"], check=True, capture_output=True,
                           cwd=tmp, env=env, timeout=300)
            for name, args in CLI_COMMANDS:
                argv = [*command, *(a.format(spec=spec) for a in args)]
                walls: list[float] = []
                parts: dict[str, list[float]] = {}
                for i in range(runs + 1):
                    started = time.perf_counter()
                    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, env=env, timeout=120)
                    wall = time.perf_counter() - started
                    if done.returncode not in (0, 2):
                        raise SystemExit(f"byoc {' '.join(args)} failed: {done.stderr[-2000:]}")
                    if i == 0:
                        continue
                    walls.append(wall)
                    for k, v in parse_timings(done.stderr).items():
                        parts.setdefault(k, []).append(v)
                out["commands"][name] = {"wall": round(statistics.median(walls), 3), "walls": walls,
                                         **{k: round(statistics.median(v), 3) for k, v in parts.items()}}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    return out


def engine_bench(resources: int = 5000) -> dict[str, float]:
    from bench.synthetic import measure

    return measure(resources)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1,3,10,30", help="cluster sizes, comma-separated")
    ap.add_argument("--delays", default="0,50", help="per-call delays in ms, comma-separated")
    ap.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM)
    ap.add_argument("--no-serial", action="store_true", help="skip the --parallelism 1 runs")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each parallel lifecycle N times and keep, per step, the median run")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up timing")
    ap.add_argument("--no-engine", action="store_true", help="skip the 5,000-resource engine run")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI section (each command in a process)")
    ap.add_argument("--cli-only", action="store_true", help="only the CLI section")
    ap.add_argument("--cli-runs", type=int, default=5, help="runs of each command in the CLI section")
    ap.add_argument("--cli-python", metavar="PYTHON",
                    help="time the byoc of this interpreter's environment (e.g. a fresh virtualenv's)")
    ap.add_argument("--moto", metavar="URL", help="use this running moto server (it is reset between runs)")
    ap.add_argument("--no-warm-up", action="store_true",
                    help="skip the one-node lifecycle run first, unmeasured, so that neither process's first "
                    "use of a service (imports, models) lands in the first case measured")
    ap.add_argument("--moto-actions", action="store_true",
                    help="also measure moto's CPU per action (BENCH_MOTO_CPU=1; the moto this run starts)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/latest.json"))
    args = ap.parse_args(argv)
    nodes = [int(n) for n in args.nodes.split(",") if n]
    delays = [float(d) for d in args.delays.split(",") if d]
    os.environ.update(CREDENTIALS)
    results: dict[str, Any] = {"spec": str(SPEC.relative_to(ROOT)), "parallelism": args.parallelism,
                               "cpus": os.cpu_count(), "load": os.getloadavg()[0], "repeat": args.repeat,
                               "cases": []}
    if not args.no_cli:
        results["cli"] = cli_bench(args.cli_runs, byoc_command(args.cli_python) if args.cli_python else None,
                                   args.moto)
    if args.cli_only:
        return _finish(results, args.out)
    if not args.no_startup:
        results["startup"] = startup()
    if not args.no_engine:
        results["engine"] = engine_bench()
    if args.moto_actions and not args.moto:
        os.environ["BENCH_MOTO_CPU"] = "1"  # read by bench/fastmoto.py in the server started here
    proc, moto_url = (None, args.moto) if args.moto else start_moto()
    actions = moto_url if args.moto_actions and not args.moto else None
    proxy = ProxyProcess(moto_url)
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    try:
        if not args.no_warm_up:
            reset(moto_url)
            with tempfile.TemporaryDirectory() as tmp:
                Run(proxy, 1, args.parallelism, Path(tmp), None, actions).lifecycle()
        for delay in delays:
            proxy.delay = delay / 1000
            for n in nodes:
                case: dict[str, Any] = {"nodes": n, "delay_ms": delay}
                for label, par in (("parallel", args.parallelism), ("serial", 1)):
                    if label == "serial" and (args.no_serial or not delay):
                        continue
                    runs = []
                    for _ in range(args.repeat if label == "parallel" else 1):
                        reset(moto_url)
                        with tempfile.TemporaryDirectory() as tmp:
                            run = Run(proxy, n, par, Path(tmp), proc.pid if proc else None, actions)
                            runs.append(run.lifecycle(serial_only=label == "serial"))
                    case[label] = median_steps(runs)
                    for step in case[label]:
                        step.update(step_bounds(step, delay, par, results["cpus"] or 1))
                results["cases"].append(case)
                print(f"done: {n} nodes at {delay:g} ms", file=sys.stderr, flush=True)
    finally:
        proxy.stop()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    return _finish(results, args.out)


def _finish(results: dict[str, Any], path: str) -> int:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
