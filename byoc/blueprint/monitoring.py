"""Monitoring: the log group the nodes ship Proton's console log to, alarms per node (CPU,
status checks, data disk — Proton refuses ingest at 90%) and per target group (unhealthy hosts),
an SNS topic (with an email subscription when the spec gives an address) and a dashboard."""

from __future__ import annotations

from typing import Any

from byoc.blueprint.base import Balancer, Builder, Node, created_key_arn, log_group_name
from byoc.blueprint.iam import metrics_namespace
from byoc.model import Ref
from byoc.spec import Spec

DATA_MOUNT = "/var/lib/proton-data"  # where the node mounts its data volume (see byoc.userdata)


def build_log_group(b: Builder) -> str:
    return b.add("aws_cloudwatch_log_group", "main", None, {
        "name": log_group_name(b.cluster),
        "retention_in_days": b.spec.data["monitoring"]["log_retention_days"],
        "kms_key_id": created_key_arn(b.spec),
    }, label=log_group_name(b.cluster))


def subscription_names(spec: Spec) -> dict[str, frozenset[str]]:
    """The topic subscriptions ``build_alarms`` adds for ``spec``, by protocol."""
    return {"email": frozenset()} if spec.data["monitoring"].get("alarm_email") else {}


def build_alarms(b: Builder, nodes: list[Node], balancer: Balancer) -> None:
    mon = b.spec.data["monitoring"]
    topic = b.add("aws_sns_topic", "alarms", None, {
        "name": f"{b.cluster}-alarms", "kms_master_key_id": "alias/aws/sns",
    })
    if mon.get("alarm_email"):
        b.add("aws_sns_topic_subscription", "email", None, {
            "topic_arn": Ref(topic, "arn"), "protocol": "email", "endpoint": mon["alarm_email"],
        }, tagged=False)
    actions = [Ref(topic, "arn")]
    ns = metrics_namespace(b.cluster)

    def alarm(name: str, key: str, description: str, **props: Any) -> None:
        b.add("aws_cloudwatch_metric_alarm", name, key, {
            "alarm_name": f"{b.cluster}-{name}-{key}",
            "alarm_description": description,
            "statistic": "Average",
            "period": 300,
            "evaluation_periods": 2,
            "datapoints_to_alarm": 2,
            "comparison_operator": "GreaterThanThreshold",
            "treat_missing_data": "missing",
            "alarm_actions": actions,
            "ok_actions": actions,
            "insufficient_data_actions": [],
            **props,
        }, label=f"{b.cluster}-{name}-{key}")

    for n in nodes:
        instance = {"InstanceId": Ref(n.instance)}
        alarm("cpu", n.key, f"Proton node {n.key}: CPU above {mon['cpu_alarm_threshold_percent']}%",
              namespace="AWS/EC2", metric_name="CPUUtilization", dimensions=instance,
              threshold=float(mon["cpu_alarm_threshold_percent"]))
        alarm("status", n.key, f"Proton node {n.key}: EC2 status check failed",
              namespace="AWS/EC2", metric_name="StatusCheckFailed", dimensions=instance,
              statistic="Maximum", period=60, threshold=0.0)
        alarm("disk", n.key,
              f"Proton node {n.key}: data disk above {mon['disk_alarm_threshold_percent']}% "
              "(Proton refuses ingest at 90%)",
              namespace=ns, metric_name="disk_used_percent",
              dimensions={**instance, "path": DATA_MOUNT, "fstype": "xfs"},
              threshold=float(mon["disk_alarm_threshold_percent"]), evaluation_periods=1,
              datapoints_to_alarm=1)
    lb_ns = "AWS/ApplicationELB" if balancer.type == "application" else "AWS/NetworkELB"
    for port, tg in balancer.target_groups.items():
        dims = {"TargetGroup": Ref(tg, "arn_suffix"), "LoadBalancer": Ref(balancer.lb, "arn_suffix")}
        alarm("unhealthy", str(port), f"Load balancer port {port}: a Proton node is unhealthy",
              namespace=lb_ns, metric_name="UnHealthyHostCount", dimensions=dims,
              statistic="Maximum", period=60, threshold=0.0)

    b.add("aws_cloudwatch_dashboard", "main", None, {
        "dashboard_name": b.cluster,
        "dashboard_body": _dashboard(b, nodes, balancer, ns, lb_ns),
    }, tagged=False)


def _dashboard(b: Builder, nodes: list[Node], balancer: Balancer, ns: str, lb_ns: str) -> dict[str, Any]:
    def widget(title: str, metrics: list[list[Any]], y: int, x: int = 0) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
            "title": title, "region": b.region, "view": "timeSeries", "stat": "Average",
            "period": 300, "metrics": metrics}}

    cpu = [["AWS/EC2", "CPUUtilization", "InstanceId", Ref(n.instance)] for n in nodes]
    disk = [[ns, "disk_used_percent", "InstanceId", Ref(n.instance), "path", DATA_MOUNT, "fstype", "xfs"]
            for n in nodes]
    mem = [[ns, "mem_used_percent", "InstanceId", Ref(n.instance)] for n in nodes]
    unhealthy = [[lb_ns, "UnHealthyHostCount", "TargetGroup", Ref(tg, "arn_suffix"),
                  "LoadBalancer", Ref(balancer.lb, "arn_suffix")] for tg in balancer.target_groups.values()]
    return {"widgets": [
        widget("CPU utilisation (%)", cpu, 0),
        widget("Data disk used (%) — Proton refuses ingest at 90%", disk, 0, 12),
        widget("Memory used (%)", mem, 6),
        widget("Unhealthy nodes per port", unhealthy, 6, 12),
    ]}
