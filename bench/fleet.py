"""The fleet benchmark: ``byoc drift`` over many three-node clusters spread over several AWS accounts
(each spec assumes a role in its own account; moto keeps accounts apart by the account id in the
role's ARN), against a moto server behind the latency-injecting, call-counting proxy.

Setup, not timed: the clusters are applied with the proxy at 0 ms, several at a time. Then, at the
per-call delay, one cluster is checked alone and then the whole fleet once for each --parallelism
(a sweep over one setup), each by the real CLI in a process of its own (as cron runs it). Printed:
AWS calls per cluster (the fleet's against the single cluster's), wall time against the work bound
(calls x delay / parallelism) and against this machine's CPU bound (the CPU that byoc's process, the
moto server and the proxy spent on the run, over the machine's cores: what the wall time cannot go
below when all three share it, as they do here and do not against AWS), which of the two holds, and
the peak memory of the fleet's process (VmHWM, read from /proc as it runs). Timings here are
measurements, never tests.

The delay stands for the network by default (``--delay-mode network``, as in bench/run.py): moto's
own time comes on top of it, and on a machine that runs moto beside byoc that time grows with the
load (moto answers from one process). With ``--delay-mode total`` the delay is the whole call's
instead: the proxy answers each call the delay after it came, moto's time inside it (or when moto
answered, if later), as the work bound assumes. Either way each run also prints what the calls took
at the proxy (their mean, moto's share of it) and the calls in flight there on average: the wall
time against the bound those calls' own times give (the sum of their times / parallelism).

moto's own CPU is on this machine too: with two cores, moto's and the proxy's CPU on top of byoc's
put a floor under the wall time that AWS (whose servers cost byoc nothing) does not. So after the
runs on moto (``--answers moto``), the fleet is checked once more with no delay at all, every
answer recorded by the proxy (the floor: what the fleet takes on this machine with no network), and
then once for each --parallelism at the delay with moto's recorded answers replayed
(``--answers replayed``): the same answers, byte for byte, at the proxy's CPU only. A drift check
only reads, and nothing changes between the recording and the replay; a request that was not
recorded would go to moto and is counted as a miss.

Usage: python bench/fleet.py [--clusters 100] [--accounts 5] [--delay 50] [--parallelism 5,10,20]
       [--in-flight 16] [--setup-workers 4] [--delay-mode network|total] [--answers moto,replayed]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
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


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a running process has used so far; None where /proc cannot say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_measured(command: list[str], env: dict[str, str]) -> tuple[int, str, str, Any, float]:
    """Run ``command``; its exit code, stdout, stderr, its own resource usage (``os.wait4``) and its
    peak resident memory in MiB (``peak_rss``)."""
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        assert p.stdout is not None
        stop, peak = threading.Event(), [0]
        watch = threading.Thread(target=peak_rss, args=(p.pid, stop, peak), daemon=True)
        watch.start()
        out = p.stdout.read()
        stop.set()
        watch.join()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        p.stdout.close()
        err.seek(0)
        return p.returncode, out, err.read(), usage, peak[0] / 1024


def peak_rss(pid: int, stop: threading.Event, peak: list[int], every: float = 0.02) -> None:
    """The high-water mark of process ``pid``'s resident memory (``VmHWM``, kB, into ``peak[0]``),
    read every ``every`` seconds until ``stop``. Not ``ru_maxrss``: Linux carries into it the
    resident size of the process it was forked from (here, the benchmark with a hundred clusters'
    setup in it), so every child read about 500 MiB. Read only once the process runs byoc (before
    its exec it is still a copy of the benchmark); growth in its last ``every`` seconds is missed."""
    status, cmdline = Path(f"/proc/{pid}/status"), Path(f"/proc/{pid}/cmdline")
    while not stop.is_set():
        try:
            if b"byoc" in cmdline.read_bytes():
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass
        stop.wait(every)


def drift(specs: list[Path], args: argparse.Namespace, env: dict[str, str], parallelism: int,
          servers: dict[str, int]) -> dict[str, Any]:
    """``byoc drift SPEC...`` in a process of its own: exit code, the fleet's own wall time (its
    summary line), the process's wall time, CPU and peak memory, and the CPU the ``servers`` (name
    → pid: the moto server, the proxy) spent meanwhile."""
    command = [sys.executable, "-m", "byoc", "drift", *map(str, specs),
               "--parallelism", str(parallelism), "--clusters", str(args.in_flight)]
    if len(specs) == 1:
        command += ["--shard", "1/1"]  # a fleet run of one, for its summary line
    served = {name: cpu_seconds(pid) for name, pid in servers.items()}
    load = os.getloadavg()[0]
    started = time.monotonic()
    code, stdout, stderr, usage, peak = run_measured(command, env)
    wall = time.monotonic() - started
    spent = {}
    for name, pid in servers.items():
        now, then = cpu_seconds(pid), served[name]
        spent[f"{name}_cpu_seconds"] = None if now is None or then is None else round(now - then, 2)
    m = re.search(r"Fleet: (\d+) cluster\(s\).*: (\d+) fine, (\d+) drifted, (\d+) failed \(([\d.]+)s",
                  stdout)
    if code != 0 or m is None:
        raise SystemExit(f"drift failed (exit {code}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return {"exit": code, "fleet_seconds": float(m.group(5)), "process_seconds": round(wall, 2),
            # CPU of byoc's process (one core at most for its Python threads): what the wall time
            # cannot go below, whatever the delay and --parallelism
            "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), **spent,
            "maxrss_mib": round(peak, 1),
            # other processes' load on the machine, which these timings share it with
            "load_average_before": round(load, 2), "load_average_after": round(os.getloadavg()[0], 2)}


def bounds(run: dict[str, Any], calls: int, delay_ms: float, parallelism: int) -> dict[str, Any]:
    """The run's lower bounds of the wall time and which holds: the work bound (the calls at the
    delay, ``parallelism`` at a time), the machine's CPU bound (byoc's, moto's and the proxy's CPU
    over the cores; byoc's own CPU alone when /proc could not tell the servers') and byoc's process
    (its CPU: one process runs its Python on one core at a time; about, as the SDK's C code runs
    beside it and its start-up is in it)."""
    work = calls * delay_ms / 1000 / parallelism
    cores = os.cpu_count() or 1
    servers = [run.get("moto_cpu_seconds"), run.get("proxy_cpu_seconds")]
    process = run["process_cpu_seconds"]
    cpu = (process + sum(c for c in servers if c is not None)) / cores
    holds, bound = max((("work", work), ("cpu", cpu), ("process", process)), key=lambda b: b[1])
    wall = run["fleet_seconds"]
    return {"work_bound_seconds": round(work, 2), "cpu_bound_seconds": round(cpu, 2),
            "process_bound_seconds": round(process, 2), "bound_that_holds": holds,
            # the share of the machine's CPU the three used while the fleet ran: when the CPU bound
            # holds, a share well below 1 says other processes took the rest (the bound assumes not)
            "machine_share": round(cpu / wall, 3) if wall else None,
            "wall_over_work_bound": round(wall / work, 3) if work else None,
            "wall_over_bound": round(wall / bound, 3) if bound else None}


def at_the_proxy(calls: list[Any], parallelism: int) -> dict[str, Any]:
    """What the calls took at the proxy: their mean time, moto's mean share of it, the calls in
    flight there on average (their summed time over the run's span) and the bound their own times
    give (the summed time / parallelism)."""
    if not calls:
        return {}
    spent = sum(c.end - c.start for c in calls)
    span = max(c.end for c in calls) - min(c.start for c in calls)
    return {"call_ms": round(spent / len(calls) * 1000, 1),
            "moto_ms": round(sum(c.upstream for c in calls) / len(calls) * 1000, 1),
            "in_flight_at_proxy": round(spent / span, 1) if span else None,
            "calls_bound_seconds": round(spent / parallelism, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--accounts", type=int, default=5)
    ap.add_argument("--delay", type=float, default=50, help="per-call delay in ms")
    ap.add_argument("--parallelism", default="5,10,20",
                    help="AWS calls in flight across the fleet; several (comma-separated) sweep them over "
                    "one setup")
    ap.add_argument("--in-flight", type=int, default=16,
                    help="clusters in flight (byoc drift --clusters); one cluster alone keeps about two "
                    "calls in flight (its critical path), so 8 would leave a parallelism of 20 partly unused")
    ap.add_argument("--setup-workers", type=int, default=4, help="clusters applied at once in the setup")
    ap.add_argument("--delay-mode", choices=("network", "total"), default="network",
                    help="network: the delay is added to moto's time; total: each call takes the delay, "
                    "moto's time included")
    ap.add_argument("--answers", default="moto,replayed",
                    help="whose answers the sweep runs on (comma-separated): moto (live), replayed (moto's "
                    "answers recorded in a run with no delay, then replayed by the proxy)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/fleet.json"))
    args = ap.parse_args(argv)
    sweep = [int(p) for p in str(args.parallelism).split(",") if p.strip()]
    kinds = [k.strip() for k in str(args.answers).split(",") if k.strip()]
    if not kinds or set(kinds) - {"moto", "replayed"}:
        ap.error(f"--answers: moto, replayed or both, not {args.answers!r}")

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
            proxy.total = args.delay_mode == "total"
            proxy.delay = args.delay / 1000

            servers = {"moto": server.proc.pid, "proxy": proxy.proc.pid}
            single = drift(specs[:1], args, env, max(sweep), servers)
            single_calls = len(proxy.take())
            runs = []
            floor = None
            if "moto" in kinds:
                for parallelism in sweep:
                    fleet = drift(specs, args, env, parallelism, servers)
                    runs.append(("moto", parallelism, fleet, proxy.take()))
            if "replayed" in kinds:
                proxy.delay = 0
                proxy.answers("record")
                floor = drift(specs, args, env, max(sweep), servers)
                floor_calls = len(proxy.take())
                recorded = proxy.answers("replay")
                proxy.delay = args.delay / 1000
                for parallelism in sweep:
                    fleet = drift(specs, args, env, parallelism, servers)
                    fleet["misses"] = proxy.answers("replay")["misses"]
                    runs.append(("replayed", parallelism, fleet, proxy.take()))
                proxy.answers("off")
    finally:
        proxy.stop()
        server.proc.terminate()
        server.proc.wait(timeout=10)

    cores = os.cpu_count()
    print(f"single cluster: {single_calls} AWS calls, {single['fleet_seconds']:.2f}s")
    results: dict[str, Any] = {
        "clusters": args.clusters, "accounts": args.accounts, "delay_ms": args.delay,
        "delay_mode": args.delay_mode,
        "in_flight": args.in_flight, "setup_seconds": round(setup, 1), "cpus": cores,
        "single": {**single, "calls": single_calls}, "sweep": [],
    }
    if floor is not None:
        work = floor_calls * args.delay / 1000 / max(sweep)
        results["floor"] = {"parallelism": max(sweep), **floor, "calls": floor_calls,
                            "answers_recorded": recorded["kept"],
                            "over_work_bound": round(floor["fleet_seconds"] / work, 3) if work else None}
        print(f"\nwith no delay at all (moto's answers recorded meanwhile: {recorded['kept']}), "
              f"--parallelism {max(sweep)}: {floor['fleet_seconds']:.2f}s = "
              f"{results['floor']['over_work_bound']}x the work bound at {args.delay:g} ms: this machine's "
              f"floor with moto on it (byoc {floor['process_cpu_seconds']:.1f}s + moto "
              f"{floor.get('moto_cpu_seconds')}s + proxy {floor.get('proxy_cpu_seconds')}s of CPU)")
    for answers, parallelism, fleet, fleet_calls in runs:
        per_cluster = len(fleet_calls) / args.clusters
        by_action: dict[str, int] = {}
        for c in fleet_calls:
            key = f"{c.service}:{c.action}"
            by_action[key] = by_action.get(key, 0) + 1
        f = {"answers": answers, "parallelism": parallelism, **fleet, "calls": len(fleet_calls),
             "calls_per_cluster": round(per_cluster, 2),
             "calls_per_cluster_over_single": round(per_cluster / single_calls, 4) if single_calls else None,
             **bounds(fleet, len(fleet_calls), args.delay, parallelism),
             **at_the_proxy(fleet_calls, parallelism),
             "by_action": dict(sorted(by_action.items()))}
        results["sweep"].append(f)
        print(f"\n--parallelism {parallelism}, {answers} answers"
              + (f" ({f['misses']} missed, asked of moto)" if answers == "replayed" else "")
              + f": {f['calls']} AWS calls = {per_cluster:.2f} per cluster "
              f"({f['calls_per_cluster_over_single']}x a single cluster's)")
        print(f"  wall {f['fleet_seconds']:.2f}s (process {f['process_seconds']:.2f}s); work bound "
              f"{f['work_bound_seconds']:.2f}s = {f['calls']} calls x {args.delay:g} ms / {parallelism}: "
              f"{f['wall_over_work_bound']}x")
        print(f"  CPU bound of this machine {f['cpu_bound_seconds']:.2f}s = "
              f"(byoc {f['process_cpu_seconds']:.1f}s + moto {f.get('moto_cpu_seconds')}s"
              f" + proxy {f.get('proxy_cpu_seconds')}s) / {cores} cores; byoc's one process "
              f"{f['process_bound_seconds']:.2f}s; "
              f"the {f['bound_that_holds']} bound holds: wall = {f['wall_over_bound']}x it; they had "
              f"{f['machine_share']:.0%} of the machine's CPU meanwhile")
        if "call_ms" in f:
            print(f"  at the proxy a call took {f['call_ms']} ms on average (moto {f['moto_ms']} ms of it; "
                  f"delay mode {args.delay_mode}), {f['in_flight_at_proxy']} calls in flight on average: "
                  f"wall = {f['fleet_seconds'] / f['calls_bound_seconds']:.3f}x the "
                  f"{f['calls_bound_seconds']:.2f}s those calls' own times give at {parallelism}")
        print(f"  byoc CPU {f['process_cpu_seconds'] / args.clusters:.3f}s per cluster (the single run: "
              f"{single['process_cpu_seconds']:.1f}s); peak memory {f['maxrss_mib']} MiB; load average "
              f"{f['load_average_before']} -> {f['load_average_after']} on {cores} CPUs")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
