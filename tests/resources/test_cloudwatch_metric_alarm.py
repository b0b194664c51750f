"""aws_cloudwatch_metric_alarm against moto: create = discover, batched discovery, in-place changes,
name clashes, delete, and the AWS behaviours moto lacks by injection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.cloudwatch_metric_alarm import KIND

ADDR = "aws_cloudwatch_metric_alarm.cpu"
NAME = "test-node-0-cpu"
TOPIC = "arn:aws:sns:us-west-2:123456789012:test-alarms"


def tags(addr: str = ADDR, **extra: str) -> dict[str, str]:
    return {"Name": "cpu", "byoc:cluster": "test", "byoc:address": addr, **extra}


def props(**over: Any) -> dict[str, Any]:
    base = {
        "alarm_name": NAME,
        "alarm_description": "CPU of node 0 above 80%",
        "namespace": "AWS/EC2",
        "metric_name": "CPUUtilization",
        "dimensions": {"InstanceId": "i-0123456789abcdef0"},
        "statistic": "Average",
        "period": 300,
        "evaluation_periods": 2,
        "datapoints_to_alarm": 2,
        "threshold": 80.0,
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "missing",
        "alarm_actions": [TOPIC],
        "ok_actions": [TOPIC],
        "insufficient_data_actions": [],
        "tags": tags(team="a"),
    }
    return {**base, **over}


def hook(ctx: AwsContext, op: str, fn: Callable[..., Any], when: str = "before-call",
         service: str = "cloudwatch") -> list[int]:
    """Register ``fn`` first for ``op`` on the client of ``service``; count the calls."""
    calls: list[int] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(1)
        return fn(len(calls), **kwargs)

    client = ctx.client(service)
    client.meta.events.register_first(f"{when}.{client.meta.service_model.service_id.hyphenize()}.{op}",
                                      counted)
    return calls


def count(ctx: AwsContext, op: str) -> list[int]:
    return hook(ctx, op, lambda n, **kw: None)


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    def fail(n: int, **kwargs: Any) -> None:
        if n <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    return hook(ctx, op, fail)


def put_raw(ctx: AwsContext, name: str, tag_map: dict[str, str], **extra: Any) -> None:
    ctx.client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average",
        Period=60, EvaluationPeriods=3, Threshold=90, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": k, "Value": v} for k, v in tag_map.items()], **extra,
    )


def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.address == ADDR and live.id == NAME
    assert live.props == props()
    assert live.attr("arn") == f"arn:aws:cloudwatch:us-west-2:123456789012:alarm:{NAME}"
    assert KIND.discover(ctx) == [live]


def test_discovery_normalises_aws_defaults_and_order(ctx: AwsContext) -> None:
    # no description, DatapointsToAlarm or TreatMissingData; actions in another order; int threshold
    dimensions = [{"Name": "InstanceId", "Value": "i-1"}, {"Name": "AutoScalingGroupName", "Value": "g"}]
    put_raw(ctx, NAME, tags(), AlarmActions=["arn:b", "arn:a"], Dimensions=dimensions)
    [live] = KIND.discover(ctx)
    assert live.props == props(
        alarm_description="", dimensions={"AutoScalingGroupName": "g", "InstanceId": "i-1"}, period=60,
        evaluation_periods=3, datapoints_to_alarm=3, threshold=90.0, alarm_actions=["arn:a", "arn:b"],
        ok_actions=[], tags=tags(),
    )
    assert isinstance(live.props["threshold"], float)


def test_discovery_is_per_cluster_and_without_an_address_unmanaged(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    put_raw(ctx, "someone-else", {"owner": "x"})
    put_raw(ctx, "no-address", {"byoc:cluster": "test"})
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    found = {x.address: x.id for x in KIND.discover(ctx)}
    assert found == {ADDR: live.id, 'aws_cloudwatch_metric_alarm.unmanaged["no-address"]': "no-address"}


def test_several_alarms_are_described_in_one_call(ctx: AwsContext) -> None:
    for i in range(5):
        put_raw(ctx, f"test-{i}", tags(f"aws_cloudwatch_metric_alarm.a{i}"))
    put_raw(ctx, "not-ours", {"owner": "x"})
    describes = count(ctx, "DescribeAlarms")
    with ctx.discovery_pass():
        found = KIND.discover(ctx)
    assert sorted(v.id for v in found) == [f"test-{i}" for i in range(5)]
    assert len(describes) == 1


def test_alarm_names_are_batched_by_a_hundred(ctx: AwsContext) -> None:
    for i in range(101):
        put_raw(ctx, f"test-{i:03}", tags(f"aws_cloudwatch_metric_alarm.a{i}"))
    sizes: list[int] = []
    hook(ctx, "DescribeAlarms", lambda n, params, **kw: sizes.append(len(params["AlarmNames"])),
         when="before-parameter-build")
    assert len(KIND.discover(ctx)) == 101
    assert sizes == [100, 1]


def test_alarm_listed_by_a_stale_tagging_index_is_skipped(ctx: AwsContext) -> None:
    # the tagging index lags in AWS: it may still list an alarm deleted a moment ago
    live = KIND.create(ctx, ADDR, props())
    stale = {
        "ResourceARN": "arn:aws:cloudwatch:us-west-2:123456789012:alarm:test-gone",
        "Tags": [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": "x.gone"}],
    }
    hook(ctx, "GetResources", lambda n, parsed, **kw: parsed["ResourceTagMappingList"].append(stale),
         when="after-call", service="resourcegroupstaggingapi")
    assert KIND.discover(ctx) == [live]


def test_update_every_prop_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    other = "arn:aws:sns:us-west-2:123456789012:test-pager"
    new = props(
        alarm_description="CPU of node 0 above 90%", namespace="CWAgent", metric_name="cpu_usage_active",
        dimensions={"host": "node-0", "cpu": "cpu-total"}, statistic="Maximum", period=60,
        evaluation_periods=5, datapoints_to_alarm=3, threshold=90.5, comparison_operator="LessThanThreshold",
        treat_missing_data="breaching", alarm_actions=sorted([TOPIC, other]), ok_actions=[],
        insufficient_data_actions=[TOPIC], tags=tags(env="prod"),
    )
    changed = {k for k in new if new[k] != live.props[k]}
    assert changed == set(new) - {"alarm_name"}
    updated = KIND.update(ctx, live, new, changed)
    assert updated.props == new and updated.id == live.id and updated.attrs == live.attrs
    assert KIND.discover(ctx) == [updated]


def test_tag_only_update_does_not_rewrite_the_alarm(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    puts = count(ctx, "PutMetricAlarm")
    updated = KIND.update(ctx, live, props(tags=tags(env="prod")), {"tags"})
    assert puts == [] and KIND.discover(ctx) == [updated]


def test_name_change_replaces() -> None:
    assert KIND.force_new == frozenset({"alarm_name"})
    assert KIND.pins == frozenset() and KIND.holds_data is False


def test_create_carries_on_with_own_half_made_alarm(ctx: AwsContext) -> None:
    put_raw(ctx, NAME, tags())  # an earlier run's alarm: other definition, a tag missing
    live = KIND.create(ctx, ADDR, props())
    assert live.props == props()
    assert KIND.discover(ctx) == [live]


def test_create_refuses_to_overwrite_someone_elses_alarm(ctx: AwsContext) -> None:
    put_raw(ctx, NAME, {"owner": "x"})
    puts = count(ctx, "PutMetricAlarm")
    with pytest.raises(CloudError, match=f"an alarm named {NAME} already exists"):
        KIND.create(ctx, ADDR, props())
    assert puts == []
    alarm = ctx.client("cloudwatch").describe_alarms(AlarmNames=[NAME])["MetricAlarms"][0]
    assert alarm["Threshold"] == 90.0


def test_create_answers_from_what_it_put_under_the_arn_aws_gives(ctx: AwsContext) -> None:
    """No read-back after PutMetricAlarm (which answers nothing): the one DescribeAlarms is the
    look-before-create, and the ARN byoc works out is the one AWS reports."""
    describes = hook(ctx, "DescribeAlarms", lambda n, parsed, **kw: None, when="after-call")
    live = KIND.create(ctx, ADDR, props())
    assert len(describes) == 1 and live.props == props()
    (found,) = KIND.discover(ctx)
    assert live.attrs["arn"] == found.attrs["arn"] and found.attrs["arn"].endswith(":alarm:" + live.id)


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # moto says nothing for a missing alarm


def test_delete_of_missing_alarm_reported_not_found_is_success(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    calls = fail_first(ctx, "DeleteAlarms", "ResourceNotFound", 1)  # what AWS answers
    KIND.delete(ctx, live)
    assert len(calls) == 1


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteAlarms", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


def test_tagging_retries_concurrent_modification(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "TagResource", "ConcurrentModificationException", 2)
    updated = KIND.update(ctx, live, props(tags=tags(env="prod")), {"tags"})
    assert len(calls) == 3 and KIND.discover(ctx) == [updated]


def test_metric_math_alarm_made_by_hand_is_discovered_as_a_diff(ctx: AwsContext) -> None:
    metrics = [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"},
                                           "Period": 60, "Stat": "Average"}, "ReturnData": True}]
    ctx.client("cloudwatch").put_metric_alarm(
        AlarmName=NAME, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Metrics=metrics, Tags=[{"Key": k, "Value": v} for k, v in tags().items()],
    )
    [live] = KIND.discover(ctx)
    assert live.props["metric_name"] is None and live.props["period"] == 0
    assert live.props != props()


def test_the_test_moto_lists_alarms_while_another_thread_puts_one(ctx: AwsContext) -> None:
    """byoc.sandbox.alarms_listed_safely: moto's alarm table answers a snapshot, so a
    DescribeAlarms that lists while a PutMetricAlarm adds (AWS serves both at once) cannot fail
    with "dictionary changed size during iteration", as moto's live dict view did."""
    from moto.cloudwatch.models import cloudwatch_backends

    cw = ctx.client("cloudwatch")
    for name in ("a", "b"):
        cw.put_metric_alarm(AlarmName=name, MetricName="CPUUtilization", Namespace="AWS/EC2",
                            Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanThreshold")
    backend = cloudwatch_backends["123456789012"]["us-west-2"]
    seen = []
    for alarm in backend.describe_alarms():  # as a listing is interrupted by another thread's put
        seen.append(alarm.name)
        backend.alarms[f"{alarm.name}-new"] = alarm
    assert seen == ["a", "b"]


def test_looks_ask_the_index_for_their_addresses_alone_together_each_answered_its_own(
    ctx: AwsContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from byoc.resources import _batch
    from tests.looks import look_all, wait_pending

    monkeypatch.setattr(_batch, "FEW", 0)  # past the first call, callers share (tests/test_batch.py)
    addresses = [f'aws_cloudwatch_metric_alarm.cpu["{i}"]' for i in range(5)]
    lives = {a: KIND.create(ctx, a, props(alarm_name=f"test-cpu-{i}", tags=tags(a)))
             for i, a in enumerate(addresses) if i % 2}
    made = {a: live.id for a, live in lives.items()}
    asked: list[list[dict[str, Any]]] = []
    described = count(ctx, "DescribeAlarms")

    def hold_first(n: int, params: dict[str, Any], **kw: Any) -> None:
        asked.append(params["TagFilters"])
        if n == 1:  # until the other four looks wait for the next call
            wait_pending(ctx, "tagging:alarms-at", 4)

    hook(ctx, "GetResources", hold_first, when="before-parameter-build", service="resourcegroupstaggingapi")
    found = look_all(KIND, ctx, addresses)
    assert {a: (f.id if f else None) for a, f in found.items()} == {a: made.get(a) for a in addresses}
    assert all(found[a] == live for a, live in lives.items())
    assert len(asked) == 2  # the first look, then one for the four that came meanwhile
    [values] = [f["Values"] for f in asked[1] if f["Key"] == "byoc:address"]
    assert len(values) == 4 and {"Key": "byoc:cluster", "Values": ["test"]} in asked[1]
    assert len(described) <= 2  # only the alarms the index named are described
    # a look started after a create sees it (never an answer read before it asked)
    KIND.create(ctx, addresses[0], props(alarm_name="test-cpu-0", tags=tags(addresses[0])))
    assert KIND.find(ctx, addresses[0]).id == "test-cpu-0"  # type: ignore[union-attr]
