"""`byoc metrics` against moto: known values put with PutMetricData come back as series and as
min/avg/max, in one GetMetricData per run (more only past 500 queries); empty series; the period;
and the Proton metric names, checked against the upstream source."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from byoc.api import Cluster
from byoc.blueprint.iam import metrics_namespace
from byoc.cli.charts import text_report
from byoc.engine import Engine
from byoc.errors import ByocError
from byoc.operations.metrics import (
    MAX_POINTS,
    MAX_QUERIES,
    PROTON_CHARTS,
    choose_period,
    cluster_metrics,
    cluster_metrics_report,
    read_metrics,
)
from byoc.operations.ssm import node_instances
from byoc.userdata import DISK_METRIC, PROTON_METRIC_SELECTOR, cloudwatch_agent_config
from tests.daytwo import applied

#: Proton's Prometheus names the selector may keep, each checked in every release v1.3.11..v1.6.1 of
#: timeplus-io/proton: src/Common/ProfileEvents.cpp (M(Query, …) …), src/Common/CurrentMetrics.cpp,
#: src/Interpreters/AsynchronousMetrics.cpp (new_values["MemoryResident"] …), with the prefixes of
#: src/Server/PrometheusMetricsWriter.h (ProtonProfileEvents_, ProtonMetrics_, ProtonAsyncMetrics_).
VERIFIED = frozenset({
    *(f"ProtonProfileEvents_{n}" for n in (
        "Query", "SelectQuery", "InsertQuery", "FailedQuery", "FailedSelectQuery", "FailedInsertQuery",
        "QueryTimeMicroseconds", "SelectQueryTimeMicroseconds", "InsertedRows", "InsertedBytes")),
    *(f"ProtonMetrics_{n}" for n in ("Query", "Merge", "MemoryTracking")),
    *(f"ProtonAsyncMetrics_{n}" for n in ("MemoryResident", "MaxPartCountForPartition")),
})
#: names the selector once matched that no pinned release has (InsertQueryTimeMicroseconds left in
#: v1.5.2; nothing is named *Ingest*), and neighbours it must not keep (billed per node)
NOT_KEPT = ("ProtonProfileEvents_InsertQueryTimeMicroseconds", "ProtonProfileEvents_IngestRows",
            "ProtonMetrics_IngestQueue", "ProtonMetrics_PartsActive", "ProtonProfileEvents_MergedRows",
            "ProtonAsyncMetrics_MemoryVirtual", "ProtonProfileEvents_Query_total")


def test_the_selector_keeps_exactly_the_verified_names() -> None:
    keep = re.compile(PROTON_METRIC_SELECTOR)
    assert all(keep.fullmatch(n) for n in VERIFIED)
    assert not any(keep.fullmatch(n) for n in NOT_KEPT)
    charted = {name for _, _, name, _, _ in PROTON_CHARTS}
    assert charted <= VERIFIED


def test_charts_query_the_dimensions_the_agent_sends() -> None:
    """The agent appends InstanceId to its own metrics and the EMF declaration's only dimension
    set is [InstanceId]; the disk metric keeps path and fstype (drop_device)."""
    from byoc.userdata import NodeConfig
    from tests.daytwo import dev_spec

    spec = dev_spec()
    cfg = NodeConfig(cluster=spec.cluster_name, region=spec.region, node="0", image="d.timeplus.com/x/proton",
                     version="1.6.16", data_volume_id="vol-0123456789abcdef0",
                     secret_arn=f"arn:aws:secretsmanager:{spec.region}:123456789012:secret:x",
                     log_group="/aws/proton/dev-proton",
                     metrics_namespace=metrics_namespace(spec.cluster_name))
    agent = cloudwatch_agent_config(cfg)
    assert agent["metrics"]["append_dimensions"] == {"InstanceId": "${aws:InstanceId}"}
    emf = agent["logs"]["metrics_collected"]["prometheus"]["emf_processor"]
    assert emf["metric_namespace"] == metrics_namespace(spec.cluster_name)
    assert emf["metric_declaration"][0]["dimensions"] == [["InstanceId"]]
    by_key = {m.key: m for m in cluster_metrics(spec.data["monitoring"])}
    assert dict(by_key["disk"].dims) == DISK_METRIC[1]
    assert all(m.dims == () for k, m in by_key.items() if k != "disk")
    assert [t.value for t in by_key["disk"].thresholds] == [
        float(spec.data["monitoring"]["disk_alarm_threshold_percent"]), 90.0]


def test_period_gives_at_most_120_points() -> None:
    assert choose_period(3600) == 60
    assert choose_period(86400) == 900
    assert choose_period(7 * 86400) == 7200
    assert choose_period(86400, age_seconds=20 * 86400) == 900
    assert choose_period(3600, age_seconds=20 * 86400) == 300  # 5-minute data only, after 15 days
    assert choose_period(3600, age_seconds=70 * 86400) == 3600
    for span in (600, 3600, 6 * 3600, 86400, 30 * 86400, 400 * 86400):
        assert span / choose_period(span) <= MAX_POINTS


def put(cw: Any, namespace: str, name: str, iid: str, values: list[float], *, start: float,
        dims: dict[str, str] | None = None) -> None:
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": name, "Value": v, "Timestamp": start + 60 * i,
         "Dimensions": [{"Name": "InstanceId", "Value": iid}, *({"Name": k, "Value": x} for k, x in
                                                                   (dims or {}).items())]}
        for i, v in enumerate(values)])


@pytest.fixture
def cluster(moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    return applied(tmp_path, monkeypatch)


def test_known_values_come_back_per_node_in_one_call(cluster: Engine) -> None:
    nodes = node_instances(cluster.state())
    cw = cluster.ctx.client("cloudwatch")
    ns = metrics_namespace(cluster.spec.cluster_name)
    now = time.time()
    start = now - 1800
    put(cw, "AWS/EC2", "CPUUtilization", nodes["0"], [10.0, 20.0, 90.0], start=start)
    put(cw, "AWS/EC2", "CPUUtilization", nodes["1"], [5.0, 5.0], start=start)
    put(cw, ns, DISK_METRIC[0], nodes["0"], [70.0, 85.0, 95.0], start=start, dims=DISK_METRIC[1])
    put(cw, ns, "ProtonProfileEvents_Query", nodes["0"], [120.0, 60.0], start=start)  # deltas per scrape
    before = cluster.ctx.calls.counts[("monitoring", "GetMetricData")]

    report = cluster_metrics_report(cluster.ctx, cluster.state(), cluster.spec.data["monitoring"], since="1h",
                                    now=now)
    assert cluster.ctx.calls.counts[("monitoring", "GetMetricData")] - before == 1 == report.calls
    assert report.period == 60
    cpu0, cpu1 = report.series[("cpu", "0")], report.series[("cpu", "1")]
    assert cpu0.values == [10.0, 20.0, 90.0] and cpu0.stats() == (10.0, 40.0, 90.0)
    assert cpu1.stats() == (5.0, 5.0, 5.0)
    assert report.series[("disk", "0")].stats() == (70.0, 250.0 / 3, 95.0)
    assert report.series[("queries", "0")].values == [2.0, 1.0]  # per second over the 60 s period
    assert report.series[("memory", "0")].empty and report.series[("disk", "1")].stats() is None

    d = report.to_dict()
    cpu = next(m for m in d["metrics"] if m["key"] == "cpu")
    assert cpu["namespace"] == "AWS/EC2" and cpu["thresholds"] == [{"value": 80.0, "label": "alarm"}]
    assert [v for _, v in cpu["nodes"]["0"]["points"]] == [10.0, 20.0, 90.0]
    assert cpu["nodes"]["0"]["points"][0][0].endswith("Z")
    assert (cpu["nodes"]["1"]["min"], cpu["nodes"]["1"]["max"]) == (5.0, 5.0)
    memory = next(m for m in d["metrics"] if m["key"] == "memory")
    assert memory["nodes"]["0"] == {"instance_id": nodes["0"], "points": [], "min": None, "avg": None,
                                    "max": None}

    text = [line for line, _ in text_report(report)]
    assert max(map(len, text)) <= 80
    assert "  node 1  no data yet" in text  # disk of node 1
    assert any("max at/over ingest stops 90" in line for line in text)  # node 0's disk reached 95
    assert any("min   10.0 avg   40.0 max   90.0" in line for line in text)


def test_no_data_at_all_is_said_per_metric_not_a_crash(cluster: Engine) -> None:
    c = Cluster(cluster.spec, ctx=cluster.ctx, backend=cluster.backend)
    report = c.metrics(since="2h", nodes=["1"])
    assert list(report.nodes) == ["1"] and all(s.empty for s in report.series.values())
    text = [line for line, _ in text_report(report)]
    assert sum("no data yet for any node" in line for line in text) == len(report.metrics)
    with pytest.raises(ByocError, match="not in the past"):
        c.metrics(since="2099-01-01T00:00:00Z")


def test_more_than_500_queries_take_as_few_calls_as_needed(ctx: Any) -> None:
    metrics = cluster_metrics({"cpu_alarm_threshold_percent": 80, "disk_alarm_threshold_percent": 80})
    nodes = {str(i): f"i-{i:017x}" for i in range(60)}
    assert len(metrics) * len(nodes) > MAX_QUERIES
    end = int(time.time())
    sizes: list[int] = []
    ctx.client("cloudwatch").meta.events.register(
        "provide-client-params.monitoring.GetMetricData",
        lambda params, **kw: sizes.append(len(params["MetricDataQueries"])))
    report = read_metrics(ctx, nodes, metrics, end - 3600, end)
    expected = -(-len(metrics) * len(nodes) // MAX_QUERIES)
    assert report.calls == expected == len(sizes) and sum(sizes) == len(metrics) * len(nodes)
    assert all(n <= MAX_QUERIES for n in sizes)
    assert len(report.series) == len(metrics) * len(nodes)


def test_describe_alarms_is_scoped_to_the_clusters_alarms() -> None:
    """cloudwatch:DescribeAlarms takes the alarm resource type (AWS's service authorization
    reference): the provider's role may read this cluster's metric alarms only."""
    import fnmatch

    from byoc import blueprint
    from byoc.blueprint.base import Facts
    from tests.daytwo import dev_spec

    spec = dev_spec('security.cross_account_role={provider_account_id: "123456789012", external_id: abc}')
    built = blueprint.build(spec, Facts(account="210987654321"))
    role = next(r for r in built if r.kind == "aws_iam_role" and r.props["name"] == "dev-proton-management")
    statements = next(iter(role.props["inline_policies"].values()))["Statement"]
    alarms = next(s for s in statements if s.get("Sid") == "ReadAlarms")
    assert alarms["Action"] in (["cloudwatch:DescribeAlarms"], "cloudwatch:DescribeAlarms")
    arns = alarms["Resource"] if isinstance(alarms["Resource"], list) else [alarms["Resource"]]
    assert all(a.startswith("arn:aws:cloudwatch:us-west-2:210987654321:alarm:dev-proton-") for a in arns)
    wildcard = [s for s in statements if "*" in (s["Resource"] if isinstance(s["Resource"], list)
                                                 else [s["Resource"]])]
    assert all("cloudwatch:DescribeAlarms" not in s["Action"] for s in wildcard)
    base = "arn:aws:cloudwatch:us-west-2:210987654321:alarm:"
    names = [r.props["alarm_name"] for r in built if r.kind == "aws_cloudwatch_metric_alarm"]
    assert names and all(any(fnmatch.fnmatchcase(base + n, a) for a in arns) for n in names)
    # another cluster whose name starts with this one's is not covered
    assert not any(fnmatch.fnmatchcase(base + "dev-proton-eu-cpu-0", a) for a in arns)
