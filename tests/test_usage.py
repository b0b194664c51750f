"""CPU usage for right-sizing, read from CloudWatch on moto: datapoints put with PutMetricData
(AWS/EC2 CPUUtilization per InstanceId) come back through ``cpu_usage``; refusals are injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.cost import Usage, suggest
from byoc.errors import ByocError, CloudError
from byoc.operations.usage import cpu_usage

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
GET = ("monitoring", "GetMetricData")


def put(ctx: AwsContext, instance_id: str, hours_ago: int, *values: float) -> None:
    """Datapoints of one hour (``hours_ago`` hours before NOW) for one instance."""
    ctx.client("cloudwatch").put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
         "Timestamp": NOW - timedelta(hours=hours_ago), "Value": v, "Unit": "Percent"}
        for v in values
    ])


def test_reads_back_hourly_average_and_maximum_for_every_instance_in_one_call(ctx: AwsContext) -> None:
    for h in range(24):                        # a quiet node: 10% and 20% in each hour
        put(ctx, "i-quiet", h, 10.0, 20.0)
    for h in range(10):                        # a busy node, pegged in 6 of its 10 hours
        put(ctx, "i-busy", h, 100.0 if h < 6 else 50.0, 80.0)
    put(ctx, "i-quiet", 24 * 8, 99.0)          # older than the window: not counted
    put(ctx, "i-other", 1, 100.0)              # not asked for

    usage = cpu_usage(ctx, ["i-quiet", "i-busy", "i-new", "i-quiet"], days=7, now=NOW)

    assert set(usage) == {"i-quiet", "i-busy", "i-new"}
    quiet = usage["i-quiet"]
    assert (quiet.average, quiet.maximum, quiet.datapoints, quiet.hours_at_max) == (15.0, 20.0, 24, 0)
    busy = usage["i-busy"]
    assert busy.datapoints == 10 and busy.maximum == 100.0 and busy.hours_at_max == 6
    assert busy.average == pytest.approx((6 * 90.0 + 4 * 65.0) / 10)
    assert usage["i-new"] == Usage(None, None, 0)
    assert ctx.calls.counts[GET] == 1

    assert suggest("c5.2xlarge", usage["i-quiet"]) == (
        "consider c5.xlarge (average CPU 15%, peak 20% over 24 h, under 40%)"
    )
    assert suggest("c5.2xlarge", busy) == "consider c5.4xlarge (CPU at 100% in 6 of 10 h)"
    assert suggest("c5.2xlarge", usage["i-new"]) == "no CPU data yet"


def test_a_longer_window_sees_older_datapoints(ctx: AwsContext) -> None:
    put(ctx, "i-a", 2, 30.0)
    put(ctx, "i-a", 24 * 8, 60.0)
    assert cpu_usage(ctx, ["i-a"], days=7, now=NOW)["i-a"].datapoints == 1
    assert cpu_usage(ctx, ["i-a"], days=14, now=NOW)["i-a"] == Usage(45.0, 60.0, 2, 0)


def test_many_instances_take_one_call_per_250(ctx: AwsContext) -> None:
    ids = [f"i-{n:017x}" for n in range(300)]
    put(ctx, ids[299], 1, 42.0)
    usage = cpu_usage(ctx, ids, now=NOW)
    assert len(usage) == 300 and usage[ids[299]] == Usage(42.0, 42.0, 1, 0)
    assert ctx.calls.counts[GET] == 2


def test_no_instances_make_no_call_and_bad_windows_are_refused(ctx: AwsContext) -> None:
    assert cpu_usage(ctx, []) == {}
    assert ctx.calls.counts[GET] == 0
    for days in (0, 456):
        with pytest.raises(ByocError, match="between 1 and 455 days"):
            cpu_usage(ctx, ["i-a"], days=days)


def test_access_denied_is_a_cloud_error_that_says_what_to_do(ctx: AwsContext) -> None:
    def deny(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform "
                                     "cloudwatch:GetMetricData"}}, "GetMetricData")

    ctx.client("cloudwatch").meta.events.register_first("before-call.cloudwatch.GetMetricData", deny)
    with pytest.raises(CloudError) as err:
        cpu_usage(ctx, ["i-a"], now=NOW)
    assert err.value.code == "AccessDenied"
    assert "GetMetricData failed: not authorized" in str(err.value)
    assert "sts get-caller-identity" in str(err.value)


@pytest.mark.parametrize(("status", "advice"), [
    ("Forbidden", "need cloudwatch:GetMetricData"),
    ("InternalError", "run the command again later"),
])
def test_a_refused_metric_is_an_error_not_missing_data(ctx: AwsContext, status: str, advice: str) -> None:
    """moto always answers Complete; AWS may answer Forbidden or InternalError per query."""

    def refuse(parsed: dict[str, Any], **kwargs: Any) -> None:
        for result in parsed.get("MetricDataResults", []):
            if result["Id"] == "a1":
                result["StatusCode"] = status
                result["Messages"] = [{"Code": status, "Value": "metric not readable"}]

    ctx.client("cloudwatch").meta.events.register("after-call.cloudwatch.GetMetricData", refuse)
    with pytest.raises(CloudError) as err:
        cpu_usage(ctx, ["i-a", "i-b"], now=NOW)
    assert err.value.code == status and err.value.aws_id == "i-b"
    assert f"CloudWatch answered {status} for the CPU utilisation of i-b (metric not readable)" \
        in str(err.value)
    assert advice in str(err.value)
