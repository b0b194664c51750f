"""Cluster health: each node's EC2 state and status checks (one batched DescribeInstanceStatus),
its health in every target group (one DescribeTargetHealth per group), and optionally Proton's
own answer through the load balancer (``GET /`` and ``GET /proton/ping``, proton-facts.md §3).

The probe's HTTP is one injectable seam (``Prober.opener``); it is never attempted against the
local sandbox, whose load balancer DNS names are invented by moto.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found, to_cloud_error
from byoc.errors import ByocError
from byoc.model import parse_address
from byoc.state.model import State

HEALTHY, DEGRADED = "healthy", "degraded"
#: environment variables that point boto3 somewhere other than AWS (the sandbox among them)
ENDPOINT_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "AWS_ENDPOINT_URL_EC2")
#: an opener: (url, timeout) → (HTTP status, body); raises OSError when nothing answers
Opener = Callable[[str, float], tuple[int, str]]


@dataclass
class NodeHealth:
    key: str
    instance_id: str
    state: str  # EC2 state: running, stopped … or "missing"
    system_status: str = "n/a"
    instance_status: str = "n/a"
    #: target group address → its state for this node ("healthy", "unhealthy: <reason>", "not registered")
    targets: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ProbeCheck:
    url: str
    status: int | None
    ok: bool
    detail: str


@dataclass
class HealthReport:
    cluster: str
    nodes: list[NodeHealth]
    problems: list[str] = field(default_factory=list)  # cluster-wide (missing nodes, failed probe)
    probe: list[ProbeCheck] = field(default_factory=list)
    probe_skipped: str | None = None

    @property
    def status(self) -> str:
        return HEALTHY if not self.problems and all(n.healthy for n in self.nodes) else DEGRADED

    @property
    def exit_code(self) -> int:
        """0 healthy, 2 degraded (1 is for errors, raised instead of reported)."""
        return 0 if self.status == HEALTHY else 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "status": self.status,
            "nodes": [{**asdict(n), "healthy": n.healthy} for n in self.nodes],
            "problems": list(self.problems),
            "probe": [asdict(p) for p in self.probe],
            "probe_skipped": self.probe_skipped,
        }


def _urlopen(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(4096).decode("utf-8", "replace")


@dataclass(frozen=True)
class Prober:
    """Asks Proton through the load balancer. ``base_url`` like ``http://<lb dns>:8123``."""

    base_url: str
    opener: Opener = _urlopen
    timeout: float = 5.0

    def check(self) -> list[ProbeCheck]:
        return [self._get("/", _root_ok), self._get("/proton/ping", _ping_ok)]

    def _get(self, path: str, judge: Callable[[int, str], tuple[bool, str]]) -> ProbeCheck:
        url = self.base_url.rstrip("/") + path
        try:
            status, body = self.opener(url, self.timeout)
        except (OSError, ValueError) as exc:
            return ProbeCheck(url, None, False, f"no answer: {exc}")
        ok, detail = judge(status, body)
        return ProbeCheck(url, status, ok, detail)


def _root_ok(status: int, body: str) -> tuple[bool, str]:
    if status == 200:
        return True, f"answered {body.strip()[:40]!r}"
    return False, f"HTTP {status} (expected 200 'Ok.')"


def _ping_ok(status: int, body: str) -> tuple[bool, str]:
    """``{"status":"UP"}`` with 200; 404 ``Initializing`` while starting; 401/403/500 when the
    default user has a password (byoc sets one): Proton answered, so it counts as up."""
    if status == 200 and '"UP"' in body.replace(" ", ""):
        return True, "UP"
    if status in (401, 403) or (status == 500 and "AUTHENTICATION" in body.upper()):
        return True, f"answered HTTP {status} (authentication required: Proton is up)"
    if status == 404 and "Initializing" in body:
        return False, "Initializing (Proton is starting)"
    return False, f"HTTP {status}: {body.strip()[:80]!r}"


def sandbox_reason(environ: Mapping[str, str]) -> str | None:
    """Why the probe must not run here, or None (real AWS)."""
    for var in ENDPOINT_VARS:
        if environ.get(var):
            return (
                f"{var} is set ({environ[var]}): AWS is simulated there, and its load balancer DNS "
                "name resolves to nothing of ours"
            )
    return None


def check_health(
    ctx: AwsContext,
    state: State | None,
    *,
    expected_nodes: int | None = None,
    probe: bool = False,
    prober: Prober | None = None,
    environ: Mapping[str, str] | None = None,
) -> HealthReport:
    """The health of every node in the state (and of the nodes the spec wants that are missing)."""
    if state is None or not any(r.kind == "aws_instance" for r in state.resources.values()):
        raise ByocError(f"cluster {ctx.cluster} has no nodes in its state: run `byoc apply` first")
    nodes = {parse_address(a)[2] or "": r.id for a, r in state.resources.items() if r.kind == "aws_instance"}
    report = HealthReport(ctx.cluster, [])
    statuses = _instance_statuses(ctx, list(nodes.values()))
    by_instance: dict[str, NodeHealth] = {}
    for key in sorted(nodes, key=lambda k: (len(k), k)):
        iid = nodes[key]
        st = statuses.get(iid, {})
        n = NodeHealth(
            key,
            iid,
            str(st.get("InstanceState", {}).get("Name", "missing")),
            str(st.get("SystemStatus", {}).get("Status", "n/a")),
            str(st.get("InstanceStatus", {}).get("Status", "n/a")),
        )
        if n.state != "running":
            n.problems.append(f"instance {iid} is {n.state}")
        for check, value in (("system", n.system_status), ("instance", n.instance_status)):
            if n.state == "running" and value not in ("ok", "initializing", "n/a"):
                n.problems.append(f"EC2 {check} status check: {value}")
        report.nodes.append(n)
        by_instance[iid] = n
    _target_health(ctx, state, by_instance)
    for i in range(expected_nodes or 0):
        if str(i) not in nodes:
            report.problems.append(
                f"node {i} does not exist (the spec asks for {expected_nodes}): run `byoc apply`"
            )
    if probe:
        reason = sandbox_reason(os.environ if environ is None else environ) if prober is None else None
        base = _probe_url(state)
        if reason:
            report.probe_skipped = f"probe skipped: {reason}"
        elif prober is None and base is None:
            report.probe_skipped = "probe skipped: the state has no HTTP endpoint of the load balancer"
        else:
            report.probe = (prober or Prober(str(base))).check()
            report.problems += [f"probe {p.url}: {p.detail}" for p in report.probe if not p.ok]
    return report


def _instance_statuses(ctx: AwsContext, ids: list[str]) -> dict[str, dict[str, Any]]:
    """DescribeInstanceStatus for all nodes, stopped ones included: one call per 100 ids (AWS's
    limit); when an id no longer exists, the ids of that batch are asked one by one."""
    ec2 = ctx.client("ec2")

    def ask(batch: list[str]) -> dict[str, dict[str, Any]]:
        out = ec2.describe_instance_status(InstanceIds=batch, IncludeAllInstances=True)
        return {s["InstanceId"]: s for s in out["InstanceStatuses"]}

    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 100):
        batch = ids[i : i + 100]
        try:
            found.update(ask(batch))
            continue
        except Exception as exc:
            if not is_not_found(exc):
                raise to_cloud_error(exc) from exc
        for iid in batch:
            try:
                found.update(ask([iid]))
            except Exception as exc:
                if not is_not_found(exc):
                    raise to_cloud_error(exc, None, iid) from exc
    return found


def _target_health(ctx: AwsContext, state: State, nodes: dict[str, NodeHealth]) -> None:
    """Each node's state in every target group the state registers it in (one call per group)."""
    from byoc.resources._elb import is_registered, target_health

    groups = {r.id: a for a, r in state.resources.items() if r.kind == "aws_lb_target_group"}
    for arn, address in sorted(groups.items(), key=lambda kv: kv[1]):
        try:
            descs = target_health(ctx, arn)
        except Exception as exc:
            raise to_cloud_error(exc, address, arn) from exc
        if descs is None:
            raise ByocError(f"{address} ({arn}) no longer exists in AWS; `byoc drift` shows what is "
                            "missing and `byoc apply` puts it back")
        seen = {d["Target"]["Id"]: d for d in descs}
        for iid, n in nodes.items():
            d = seen.get(iid)
            if d is None or not is_registered(d):
                n.targets[address] = "not registered"
                n.problems.append(f"not registered in {address}")
                continue
            h = d["TargetHealth"]
            value = str(h.get("State"))
            if value != "healthy":
                value += f": {h.get('Reason') or ''} {h.get('Description') or ''}".rstrip()
                n.problems.append(f"{value} in {address}")
            n.targets[address] = value


def _probe_url(state: State) -> str | None:
    endpoints = dict(state.outputs).get("endpoints") or {}
    for name in ("http_batch", "http_streaming"):
        if name in endpoints:
            return str(endpoints[name])
    return None
