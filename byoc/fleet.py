"""Many clusters side by side — drift, health or plan over a fleet of specs, e.g. one per customer
account, each assuming its own role: at most ``clusters`` clusters in flight and one gate that lets at
most ``parallelism`` AWS calls through at once across all of them. A cluster's failure (spec invalid,
role not assumable, throttled, state unreadable) is its record's error and never stops the others.
``shard`` picks a stable part of the specs for one of N runners.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import hashlib
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.credentials import AssumeRole, Caller, assumed_credentials, check_assumable
from byoc.aws.gate import CallGate, Hook
from byoc.aws.tags import account_id
from byoc.engine import Engine, backend_for
from byoc.errors import ByocError
from byoc.model import DEFAULT_PARALLELISM

#: statuses of a record: fine, a problem to report (exit 2), an error (exit 1)
ERROR = "error"
#: clusters in flight by default; each has at most ``PER_CLUSTER`` threads of its own
DEFAULT_CLUSTERS = 8
PER_CLUSTER = 10


@dataclass(frozen=True)
class Outcome:
    """What a check found on one cluster: its status, counts and the full report as JSON data."""

    status: str
    counts: Mapping[str, int]
    problem: bool
    report: Mapping[str, Any] | None = None
    #: the check's own object (a DriftReport, a HealthReport, a Plan), for rendering; not in JSON
    value: Any = None


@dataclass(frozen=True)
class Record:
    """One cluster of the fleet: ``status`` is the check's (in_sync/drifted, healthy/degraded,
    no_changes/changes) or ``error`` with ``error`` saying what failed."""

    spec: str
    cluster: str | None
    account: str | None
    status: str
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    problem: bool = False
    report: Mapping[str, Any] | None = None
    value: Any = None
    #: AWS calls this cluster made (its own context's; the AssumeRole calls included)
    calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"spec": self.spec, "cluster": self.cluster, "account": self.account,
                             "status": self.status, "problem": self.problem, "counts": dict(self.counts),
                             "error": self.error}
        if self.report is not None:
            d["report"] = dict(self.report)
        return d


def exit_code(records: Iterable[Record]) -> int:
    """1 if any cluster errored, else 2 if any has a problem (drift, degraded, changes), else 0."""
    records = list(records)
    if any(r.status == ERROR for r in records):
        return 1
    return 2 if any(r.problem for r in records) else 0


Check = Callable[[Engine], Outcome]


@dataclass(frozen=True)
class FleetOptions:
    """How the fleet runs. ``parallelism``: AWS calls in flight across the fleet; ``clusters``:
    clusters in flight; ``event_hooks``, ``context``, ``engine``: extra botocore hooks and keyword
    arguments for each cluster's AwsContext and Engine (tests: no sleeping, an AMI resolver)."""

    overrides: Sequence[str] = ()
    parallelism: int = DEFAULT_PARALLELISM
    clusters: int = DEFAULT_CLUSTERS
    event_hooks: Sequence[Hook] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    engine: Mapping[str, Any] = field(default_factory=dict)


def run_fleet(specs: Sequence[Path], check: Check, options: FleetOptions | None = None,
              gate: CallGate | None = None) -> list[Record]:
    """``check`` on every spec's cluster, ``options.clusters`` at a time; the records in the specs'
    order."""
    from byoc.aws.clients import ClientMaker

    options = options or FleetOptions()
    gate = gate or CallGate(options.parallelism)
    shared = Shared(Caller(options.event_hooks, last_hooks=gate.hooks()),
                    ClientMaker(pool=max(10, 2 * options.parallelism)))
    workers = max(1, min(options.clusters, len(specs)))
    finished = itertools.count(1)

    def one(spec: Path) -> Record:
        record = _one(spec, check, options, gate, shared)
        if next(finished) % workers == 0:
            # what a finished cluster leaves (its engine, reports, the SDK's answers) holds cycles,
            # which the CLI's lazy collector (byoc.cli._short_lived_gc) would keep until the exit:
            # a fleet's memory would grow by a cluster's worth each time
            gc.collect()
        return record

    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="byoc-fleet") as pool:
        return list(pool.map(one, specs))


class Shared:
    """What a fleet run's clusters share: byoc's own credentials and STS clients (``caller``), one
    SDK client per service and region (``maker``: each cluster's calls through it still sign with that
    cluster's credentials, and count, retry and wait as its own; byoc.aws.clients), and the
    credentials of each role: clusters whose specs name the same role, external id and session name
    (``AssumeRole``) in the same region sign with one set, assumed once; any other two never share
    credentials."""

    def __init__(self, caller: Caller, maker: Any) -> None:
        self.caller = caller
        self.maker = maker
        self._roles: dict[tuple[AssumeRole, str], Any] = {}
        self._lock = threading.Lock()

    def credentials(self, role: AssumeRole, region: str) -> Any:
        """The (deferred, refreshed) credentials of ``role``, made once per run."""
        with self._lock:
            found = self._roles.get((role, region))
            if found is None:
                found = self._roles[(role, region)] = assumed_credentials(role, region, caller=self.caller)
            return found


def _one(path: Path, check: Check, options: FleetOptions, gate: CallGate, shared: Shared) -> Record:
    from byoc.spec import load_spec

    cluster = account = None
    ctx: AwsContext | None = None
    try:
        spec = load_spec(str(path), options.overrides)
        cluster = spec.cluster_name
        role = AssumeRole.of_spec(spec.data["aws"], cluster)
        per_cluster = max(1, min(PER_CLUSTER, options.parallelism))
        credentials = None if role is None else shared.credentials(role, spec.region)
        ctx = AwsContext(cluster=cluster, region=spec.region, parallelism=per_cluster,
                         event_hooks=options.event_hooks, credentials=credentials,
                         **{"client_maker": shared.maker, **options.context})
        # the fleet's one gate, taken after the SDK's own client-side rate limiter has let a call
        # go (a call it holds back for throttling holds no place meanwhile)
        ctx.gate = gate
        if role is not None:
            account = known = role.account
            check_assumable(credentials)
            if known:
                # the role's credentials act in the role's own account: the ARNs that need the account
                # take it from there instead of asking STS once more (a call and a client per cluster)
                ctx.once("sts", "account", lambda: known)
        engine = Engine(spec, ctx=ctx, parallelism=per_cluster,
                        backend=backend_for(spec, credentials=credentials, client_maker=shared.maker,
                                            gate=gate),
                        **options.engine)
        outcome = check(engine)
        if account is None:
            account = account_id(ctx)  # asked once per context: drift and plan have asked already
        return Record(str(path), cluster, account, outcome.status, outcome.counts, problem=outcome.problem,
                      report=outcome.report, value=outcome.value, calls=_calls(ctx))
    except ByocError as exc:
        message = str(exc)  # a spec's own errors already start with its name
        return Record(str(path), cluster, account, ERROR,
                      error=message if message.startswith(f"{path}:") else f"{path}: {message}",
                      calls=_calls(ctx))
    except Exception as exc:  # a bug in one cluster's check must not stop the fleet
        return Record(str(path), cluster, account, ERROR, error=f"{path}: {type(exc).__name__}: {exc}",
                      calls=_calls(ctx))
    finally:
        if ctx is not None:
            ctx.close()  # its helper threads, now, not when the collector finds the context


def _calls(ctx: AwsContext | None) -> int:
    return 0 if ctx is None else sum(ctx.calls.counts.values())


# -- shards ---------------------------------------------------------------------------------------
def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1-based: 1/4 … 4/4, as CI matrices count) → (K, N)."""
    k, sep, n = text.partition("/")
    if sep and k.strip().isdigit() and n.strip().isdigit():
        kk, nn = int(k), int(n)
        if 1 <= kk <= nn:
            return kk, nn
    raise ByocError(f"--shard {text}: give K/N with 1 <= K <= N, e.g. --shard 2/4 (the second of four)")


def shard_of(spec: Path, n: int) -> int:
    """The 1-based shard of ``spec`` among ``n``: rendezvous hashing of the spec's file name, so that a
    new spec or a new runner moves only the specs it must (about 1/N of them), whatever the order
    or directory the runners list them in."""
    key = spec.name
    return max(range(1, n + 1), key=lambda k: hashlib.sha256(f"{k}:{key}".encode()).digest())


def pick_shard(specs: Sequence[Path], shard: tuple[int, int] | None) -> list[Path]:
    if shard is None:
        return list(specs)
    k, n = shard
    return [s for s in specs if shard_of(s, n) == k]


# -- the checks -----------------------------------------------------------------------------------
def drift_check(engine: Engine) -> Outcome:
    """``byoc drift``: in_sync or drifted, with the count of each kind of drift."""
    report = engine.drift()
    d = report.to_dict()
    return Outcome("in_sync" if report.in_sync else "drifted", {"checked": report.checked, **d["summary"]},
                   not report.in_sync, d, report)


def health_check(probe: bool = False) -> Check:
    """``byoc health``: healthy or degraded, with node counts."""
    def check(engine: Engine) -> Outcome:
        from byoc.operations.health import check_health

        report = check_health(engine.ctx, engine.state(), expected_nodes=engine.spec.instance_count,
                              probe=probe)
        healthy = sum(1 for n in report.nodes if n.healthy)
        return Outcome(report.status, {"nodes": len(report.nodes), "healthy": healthy,
                                       "expected": engine.spec.instance_count},
                       report.exit_code != 0, report.to_dict(), report)
    return check


def plan_check(engine: Engine) -> Outcome:
    """``byoc plan --detailed-exitcode``: changes or no_changes, with add/change/destroy counts."""
    p = engine.plan()
    return Outcome("changes" if p.has_changes else "no_changes", dict(p.counts()), p.has_changes, None, p)
