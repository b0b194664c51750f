"""The fleet benchmark: ``byoc drift`` over many three-node clusters spread over several AWS accounts
(each spec assumes a role in its own account; moto keeps accounts apart by the account id in the
role's ARN), against a moto server behind the latency-injecting, call-counting proxy.

Setup, not timed: the clusters are applied with the proxy at 0 ms, several at a time. Then, at the
per-call delay, one cluster is checked alone and then the whole fleet, each by the real CLI in a
process of its own (as cron runs it). Printed: AWS calls per cluster (the fleet's against the single
cluster's), wall time against the work bound (calls x delay / --parallelism), and the peak memory
of the fleet's process (ru_maxrss). Timings here are measurements, never tests.

Usage: python bench/fleet.py [--clusters 100] [--accounts 5] [--delay 50] [--parallelism 20]
       [--in-flight 8] [--setup-workers 4]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.awsproxy import ProxyProcess  # noqa: E402

DEV = ROOT / "specs/dev.yaml"
AMI = "ami-0123456789abcdef0"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-west-2"}


def write_specs(root: Path, clusters: int, accounts: int) -> list[Path]:
    base = yaml.safe_load(DEV.read_text())
    paths = []
    for i in range(clusters):
        data = json.loads(json.dumps(base))
        name = f"fleet-{i:03}"
        account = f"{100000000000 + i % accounts:012}"
        data["cluster"]["name"] = name
        data["compute"]["instance_count"] = 3
        data["compute"]["ami"] = AMI
        data["storage"]["bucket_name"] = f"{name}-data-byoc-bench"
        data["state"] = {"path": str(root / "state")}
        data["aws"]["assume_role"] = {"role_arn": f"arn:aws:iam::{account}:role/byoc-drift",
                                      "external_id": f"bench-{account}"}
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        paths.append(path)
    return paths


def open_accounts(specs: list[Path]) -> None:
    """Assume one role in each account, one account at a time: moto makes an account's backends on
    first use, and two threads doing so at once can leave a session key in a backend that is then
    replaced, so that its calls land in moto's default account."""
    from byoc.aws.context import AwsContext
    from byoc.engine import credentials_for
    from byoc.spec import load_spec

    seen = set()
    for path in specs:
        spec = load_spec(str(path))
        account = spec.data["aws"]["assume_role"]["role_arn"].split(":")[4]
        if account not in seen:
            seen.add(account)
            ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, credentials=credentials_for(spec))
            assert ctx.client("sts").get_caller_identity()["Account"] == account


def apply_one(path: Path) -> None:
    from byoc.aws.tags import account_id
    from byoc.engine import Engine
    from byoc.spec import load_spec

    spec = load_spec(str(path))
    engine = Engine(spec, parallelism=10)
    role_account = spec.data["aws"]["assume_role"]["role_arn"].split(":")[4]
    if account_id(engine.ctx) != role_account:
        raise SystemExit(f"{path}: the assumed role's calls land in account {account_id(engine.ctx)}")
    for _attempt in range(3):  # moto's server answers an occasional 500 to calls at once: apply again
        result = engine.apply(engine.plan())
        if result.ok:
            return
    raise SystemExit(f"{path}: setup apply failed: {[str(f.error) for f in result.failures]}")


def drift(specs: list[Path], args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """``byoc drift SPEC...`` in a process of its own: exit code, the fleet's own wall time (its
    summary line), the process's wall time and its peak memory."""
    command = [sys.executable, "-m", "byoc", "drift", *map(str, specs),
               "--parallelism", str(args.parallelism), "--clusters", str(args.in_flight)]
    if len(specs) == 1:
        command += ["--shard", "1/1"]  # a fleet run of one, for its summary line
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    p = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu
    m = re.search(r"Fleet: (\d+) cluster\(s\).*: (\d+) fine, (\d+) drifted, (\d+) failed \(([\d.]+)s",
                  p.stdout)
    if p.returncode != 0 or m is None:
        raise SystemExit(f"drift failed (exit {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return {"exit": p.returncode, "fleet_seconds": float(m.group(5)), "process_seconds": round(wall, 2),
            # CPU of byoc's process (one core at most for its Python threads): what the wall time
            # cannot go below, whatever the delay and --parallelism
            "process_cpu_seconds": round(cpu, 2),
            # ru_maxrss of children is the largest child's so far: this one's when it is the largest
            "maxrss_mib": round(max(after, before) / 1024, 1), "maxrss_grew": after > before}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=5)
    ap.add_argument("--delay", type=float, default=50, help="per-call delay in ms")
    ap.add_argument("--parallelism", type=int, default=20, help="AWS calls in flight across the fleet")
    ap.add_argument("--in-flight", type=int, default=8, help="clusters in flight (byoc drift --clusters)")
    ap.add_argument("--setup-workers", type=int, default=4, help="clusters applied at once in the setup")
    ap.add_argument("--out", default=str(ROOT / "bench/results/fleet.json"))
    args = ap.parse_args(argv)

    from tests.motoserver import MotoServer

    server = MotoServer("bench.fastmoto")
    proxy = ProxyProcess(server.url)
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=proxy.url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        with tempfile.TemporaryDirectory(prefix="byoc-fleet-") as tmp:
            specs = write_specs(Path(tmp), args.clusters, args.accounts)
            started = time.monotonic()
            open_accounts(specs)
            with cf.ThreadPoolExecutor(args.setup_workers) as pool:
                list(pool.map(apply_one, specs))
            setup = time.monotonic() - started
            print(f"setup: {args.clusters} three-node clusters in {args.accounts} accounts applied in "
                  f"{setup:.0f}s (0 ms per call; not measured)", flush=True)
            proxy.take()
            proxy.delay = args.delay / 1000

            single = drift(specs[:1], args, env)
            single_calls = len(proxy.take())
            fleet = drift(specs, args, env)
            fleet_calls = proxy.take()
    finally:
        proxy.stop()
        server.proc.terminate()
        server.proc.wait(timeout=10)

    per_cluster = len(fleet_calls) / args.clusters
    bound = len(fleet_calls) * args.delay / 1000 / args.parallelism
    by_action: dict[str, int] = {}
    for c in fleet_calls:
        key = f"{c.service}:{c.action}"
        by_action[key] = by_action.get(key, 0) + 1
    results = {
        "clusters": args.clusters, "accounts": args.accounts, "delay_ms": args.delay,
        "parallelism": args.parallelism, "in_flight": args.in_flight, "setup_seconds": round(setup, 1),
        "single": {**single, "calls": single_calls},
        "fleet": {**fleet, "calls": len(fleet_calls), "calls_per_cluster": round(per_cluster, 2),
                  "work_bound_seconds": round(bound, 2),
                  "wall_over_bound": round(fleet["fleet_seconds"] / bound, 3) if bound else None},
        "calls_per_cluster_over_single": round(per_cluster / single_calls, 4) if single_calls else None,
        "by_action": dict(sorted(by_action.items())),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    f = results["fleet"]
    print(f"single cluster: {single_calls} AWS calls, {single['fleet_seconds']:.2f}s")
    print(f"fleet of {args.clusters}: {f['calls']} AWS calls = {per_cluster:.2f} per cluster "
          f"({results['calls_per_cluster_over_single']}x a single cluster's)")
    print(f"wall {f['fleet_seconds']:.2f}s (process {f['process_seconds']:.2f}s) vs work bound "
          f"{bound:.2f}s = {f['calls']} calls x {args.delay:g} ms / {args.parallelism}: "
          f"{f['wall_over_bound']}x the bound")
    print(f"CPU of the fleet's process: {f['process_cpu_seconds']:.1f}s "
          f"({f['process_cpu_seconds'] / args.clusters:.2f}s per cluster; the single run: "
          f"{single['process_cpu_seconds']:.1f}s)")
    print(f"peak memory of the fleet's process: {f['maxrss_mib']} MiB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
