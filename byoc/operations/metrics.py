"""The cluster's metrics over a time window, per node: CPU and network (AWS/EC2), memory and
data-disk use (the CloudWatch agent), and Proton's own metrics the agent ships from its Prometheus
endpoint (byoc.userdata.PROTON_METRIC_SELECTOR), all in one batched GetMetricData (500 queries a
call, AWS's limit: more only when the cluster has more than 500 / len(metrics) nodes).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import to_cloud_error
from byoc.blueprint.iam import metrics_namespace
from byoc.errors import ByocError
from byoc.operations.logs import iso_ms, parse_since
from byoc.operations.ssm import node_instances
from byoc.state.model import State
from byoc.userdata import DISK_METRIC, MEMORY_METRIC

#: GetMetricData takes at most 500 queries per call
MAX_QUERIES = 500
#: each series gets at most about this many points
MAX_POINTS = 120
#: the periods CloudWatch keeps (seconds); the shortest giving at most MAX_POINTS is used
PERIODS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: Proton refuses inserts when its data disk is this full (proton-facts.md; the disk alarm says so)
INGEST_STOP_PERCENT = 90.0


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str


@dataclass(frozen=True)
class Metric:
    """One chart: a CloudWatch metric per node. ``namespace`` None is the cluster's own
    (ProtonCluster/<cluster>); ``rate`` divides each period's Sum by its seconds (per second)."""

    key: str
    title: str
    unit: str  # "%", "B/s", "/s", "B" or "" (a count)
    name: str
    stat: str
    namespace: str | None = None
    dims: tuple[tuple[str, str], ...] = ()
    rate: bool = False
    thresholds: tuple[Threshold, ...] = ()

    def to_dict(self, cluster: str) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "unit": self.unit,
                "namespace": self.namespace or metrics_namespace(cluster), "metric_name": self.name,
                "dimensions": {"InstanceId": "<node's instance>", **dict(self.dims)}, "stat": self.stat,
                "per_second": self.rate,
                "thresholds": [{"value": t.value, "label": t.label} for t in self.thresholds]}


#: Proton's metrics charted, as the agent names them (Prometheus name = CloudWatch metric name,
#: dimension InstanceId only: byoc.userdata.cloudwatch_agent_config). Counters arrive as the
#: increase since the previous scrape (the agent's conversion), so their Sum per period is a count.
PROTON_CHARTS: tuple[tuple[str, str, str, str, bool], ...] = (
    # key, title, metric name, stat, per second
    ("queries", "Queries started (per second)", "ProtonProfileEvents_Query", "Sum", True),
    ("failed_queries", "Failed queries (per second)", "ProtonProfileEvents_FailedQuery", "Sum", True),
    ("inserted_rows", "Rows inserted (per second)", "ProtonProfileEvents_InsertedRows", "Sum", True),
    ("running_queries", "Queries running", "ProtonMetrics_Query", "Average", False),
    ("merges", "Background merges running", "ProtonMetrics_Merge", "Average", False),
    ("max_parts", "Most parts in one partition", "ProtonAsyncMetrics_MaxPartCountForPartition", "Maximum",
     False),
    ("proton_memory", "Proton memory tracked (bytes)", "ProtonMetrics_MemoryTracking", "Average", False),
)


def cluster_metrics(monitoring: Mapping[str, Any]) -> list[Metric]:
    """The charts ``byoc metrics`` draws, with the spec's alarm thresholds (``monitoring``)."""
    cpu_alarm = float(monitoring["cpu_alarm_threshold_percent"])
    disk_alarm = float(monitoring["disk_alarm_threshold_percent"])
    disk_name, disk_dims = DISK_METRIC
    return [
        Metric("cpu", "CPU utilisation (%)", "%", "CPUUtilization", "Average", "AWS/EC2",
               thresholds=(Threshold(cpu_alarm, "alarm"),)),
        Metric("memory", "Memory used (%)", "%", MEMORY_METRIC[0], "Average",
               dims=tuple(MEMORY_METRIC[1].items())),
        Metric("disk", "Data disk used (%)", "%", disk_name, "Average", dims=tuple(disk_dims.items()),
               thresholds=(Threshold(disk_alarm, "alarm"), Threshold(INGEST_STOP_PERCENT, "ingest stops"))),
        *(Metric(f"network_{way}", f"Network {way} (bytes per second)", "B/s", f"Network{way.title()}", "Sum",
                 "AWS/EC2", rate=True) for way in ("in", "out")),
        *(Metric(key, title, "B" if key == "proton_memory" else "/s" if rate else "", name, stat, rate=rate)
          for key, title, name, stat, rate in PROTON_CHARTS),
    ]


def choose_period(seconds: float, age_seconds: float = 0.0) -> int:
    """The shortest period that gives at most MAX_POINTS points over ``seconds``; at least 5 min
    for data older than 15 days and 1 h beyond 63 days (what CloudWatch still keeps)."""
    floor = 3600 if age_seconds > 63 * 86400 else 300 if age_seconds > 15 * 86400 else 60
    for p in PERIODS:
        if p >= floor and seconds / p <= MAX_POINTS:
            return p
    return math.ceil(seconds / MAX_POINTS / 86400) * 86400


@dataclass
class Series:
    """One metric of one node: timestamps (seconds since the epoch) and values, oldest first."""

    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.values

    def stats(self) -> tuple[float, float, float] | None:
        """(min, avg, max), or None without data."""
        if not self.values:
            return None
        return min(self.values), sum(self.values) / len(self.values), max(self.values)


@dataclass
class MetricsReport:
    cluster: str
    start: int  # seconds since the epoch
    end: int
    period: int
    metrics: list[Metric]
    nodes: dict[str, str]  # node key → instance id, in node order
    #: (metric key, node key) → its series (empty when CloudWatch has nothing yet)
    series: dict[tuple[str, str], Series]
    calls: int = 0  # GetMetricData calls made
    messages: list[str] = field(default_factory=list)  # what AWS said (partial data …)

    def to_dict(self) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        for m in self.metrics:
            per_node: dict[str, Any] = {}
            for key, iid in self.nodes.items():
                s = self.series.get((m.key, key), Series())
                st = s.stats()
                per_node[key] = {
                    "instance_id": iid,
                    "points": [[iso_ms(t * 1000), v] for t, v in zip(s.timestamps, s.values, strict=True)],
                    "min": st[0] if st else None, "avg": st[1] if st else None, "max": st[2] if st else None,
                }
            out.append({**m.to_dict(self.cluster), "nodes": per_node})
        return {"cluster": self.cluster, "start": iso_ms(self.start * 1000), "end": iso_ms(self.end * 1000),
                "period_seconds": self.period, "get_metric_data_calls": self.calls,
                "messages": list(self.messages), "metrics": out}


def build_queries(
    metrics: Sequence[Metric], nodes: Mapping[str, str], namespace: str, period: int
) -> tuple[list[dict[str, Any]], dict[str, tuple[Metric, str]]]:
    """The MetricDataQuery list (ids q0, q1 …) and what each id stands for (metric, node key)."""
    queries: list[dict[str, Any]] = []
    index: dict[str, tuple[Metric, str]] = {}
    for m in metrics:
        for key, iid in nodes.items():
            qid = f"q{len(queries)}"
            dims = [{"Name": "InstanceId", "Value": iid}, *({"Name": k, "Value": v} for k, v in m.dims)]
            queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": m.namespace or namespace, "MetricName": m.name, "Dimensions": dims},
                "Period": period, "Stat": m.stat}})
            index[qid] = (m, key)
    return queries, index


def parse_results(
    results: Sequence[Mapping[str, Any]], index: Mapping[str, tuple[Metric, str]], period: int
) -> dict[tuple[str, str], Series]:
    """Every query's series, oldest first; pages of one id are merged (a repeated time counts once)."""
    points: dict[tuple[str, str], dict[int, float]] = {(m.key, key): {} for m, key in index.values()}
    for r in results:
        if r.get("Id") not in index:
            continue
        m, key = index[str(r["Id"])]
        into = points[(m.key, key)]
        for t, v in zip(r.get("Timestamps", []), r.get("Values", []), strict=False):
            at = int(t.timestamp()) if isinstance(t, datetime.datetime) else int(t)
            into[at] = float(v) / period if m.rate else float(v)
    return {k: Series(sorted(p), [p[t] for t in sorted(p)]) for k, p in points.items()}


def read_metrics(
    ctx: AwsContext,
    nodes: Mapping[str, str],
    metrics: Sequence[Metric],
    start: int,
    end: int,
) -> MetricsReport:
    """GetMetricData for every (metric, node) from ``start`` to ``end`` (seconds): 500 queries a
    call, each call's pages followed (NextToken) only when AWS returns one."""
    period = choose_period(end - start, datetime.datetime.now(datetime.UTC).timestamp() - start)
    start = start - start % period
    queries, index = build_queries(metrics, nodes, metrics_namespace(ctx.cluster), period)
    cw = ctx.client("cloudwatch")
    results: list[Mapping[str, Any]] = []
    report = MetricsReport(ctx.cluster, start, end, period, list(metrics), dict(nodes), {})
    when = {"StartTime": datetime.datetime.fromtimestamp(start, datetime.UTC),
            "EndTime": datetime.datetime.fromtimestamp(end, datetime.UTC), "ScanBy": "TimestampAscending"}
    try:
        for i in range(0, len(queries), MAX_QUERIES):
            token: str | None = None
            while True:
                extra = {"NextToken": token} if token else {}
                answer = cw.get_metric_data(MetricDataQueries=queries[i:i + MAX_QUERIES], **when, **extra)
                report.calls += 1
                results += answer.get("MetricDataResults", [])
                report.messages += [str(m.get("Value", "")) for m in answer.get("Messages", [])]
                token = answer.get("NextToken")
                if not token:
                    break
    except Exception as exc:
        raise to_cloud_error(exc, None, metrics_namespace(ctx.cluster)) from exc
    report.series = parse_results(results, index, period)
    return report


def cluster_metrics_report(
    ctx: AwsContext, state: State | None, monitoring: Mapping[str, Any], *, since: str = "24h",
    nodes: list[str] | None = None, now: float | None = None,
) -> MetricsReport:
    """The report of ``byoc metrics`` (``Cluster.metrics``): every chart for every node (or
    ``nodes``) from ``since`` (a span such as 24h, or an ISO time) to now."""
    import time

    end = int(time.time() if now is None else now)
    start = parse_since(since, end) // 1000
    if start >= end:
        raise ByocError(f"--since {since}: that is not in the past")
    return read_metrics(ctx, node_instances(state, nodes), cluster_metrics(monitoring), start, end)
