"""Right-sizing input: each instance's hourly CPU utilisation (AWS/EC2 CPUUtilization, Average and
Maximum) over the last days, read for all instances with paginated GetMetricData calls (up to
250 instances per call). The advice itself is pure: ``byoc.cost.suggest``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import to_cloud_error
from byoc.cost import PEGGED_CPU, Usage
from byoc.errors import ByocError, CloudError

__all__ = ["PERIOD", "Usage", "cpu_usage"]

#: one datapoint per hour
PERIOD = 3600
#: GetMetricData takes at most 500 queries per call: two (Average, Maximum) per instance
_PER_CALL = 250
#: CloudWatch keeps hourly datapoints for 455 days
_MAX_DAYS = 455


def _query(qid: str, instance_id: str, stat: str) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/EC2",
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
            },
            "Period": PERIOD,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _window(days: int, now: datetime | None) -> tuple[datetime, datetime]:
    """The last ``days`` days, ending at the end of the current hour (aligned to the period)."""
    now = now or datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(days=days), end


def _read(ctx: AwsContext, ids: Sequence[str], start: datetime, end: datetime) -> dict[str, list[float]]:
    """Values by query id (``a<i>``: hourly averages, ``m<i>``: hourly maxima of ``ids[i]``)."""
    queries = [q for i, iid in enumerate(ids) for q in (_query(f"a{i}", iid, "Average"),
                                                       _query(f"m{i}", iid, "Maximum"))]
    values: dict[str, list[float]] = defaultdict(list)
    try:
        pages = ctx.client("cloudwatch").get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending")
        for page in pages:
            for result in page.get("MetricDataResults", []):
                qid = str(result["Id"])
                status = result.get("StatusCode", "Complete")
                if status in ("Forbidden", "InternalError"):
                    messages = [*result.get("Messages", []), *page.get("Messages", [])]
                    raise _refused(ids[int(qid[1:])], status, messages)
                values[qid].extend(float(v) for v in result.get("Values", []))
    except CloudError:
        raise
    except Exception as exc:
        raise to_cloud_error(exc) from exc
    return values


def _refused(instance_id: str, status: str, messages: list[dict[str, Any]]) -> CloudError:
    said = "; ".join(str(m["Value"]) for m in messages if m.get("Value"))
    what = f"CloudWatch answered {status} for the CPU utilisation of {instance_id}"
    what += f" ({said})" if said else ""
    if status == "Forbidden":
        return CloudError(f"{what}: the AWS credentials in use need cloudwatch:GetMetricData",
                          aws_id=instance_id, code=status)
    return CloudError(f"{what}: run the command again later", aws_id=instance_id, code=status, retryable=True)


def cpu_usage(
    ctx: AwsContext, instance_ids: Sequence[str], days: int = 7, *, now: datetime | None = None
) -> dict[str, Usage]:
    """Hourly CPU utilisation of each instance over the last ``days`` days: the mean of the hourly
    averages, the highest hourly maximum, the number of hours with data, and how many hours peaked
    at 100%. Every id asked for is in the answer; one without data has ``Usage(None, None, 0)``."""
    if not 1 <= days <= _MAX_DAYS:
        raise ByocError(f"cannot read {days} days of CPU usage: give between 1 and {_MAX_DAYS} days "
                        "(CloudWatch keeps hourly datapoints for 455 days)")
    ids = list(dict.fromkeys(instance_ids))
    start, end = _window(days, now)
    out: dict[str, Usage] = {}
    for first in range(0, len(ids), _PER_CALL):
        chunk = ids[first:first + _PER_CALL]
        values = _read(ctx, chunk, start, end)
        for i, iid in enumerate(chunk):
            averages, maxima = values.get(f"a{i}", []), values.get(f"m{i}", [])
            out[iid] = Usage(
                average=sum(averages) / len(averages) if averages else None,
                maximum=max(maxima) if maxima else None,
                datapoints=len(averages),
                hours_at_max=sum(1 for m in maxima if m >= PEGGED_CPU),
            )
    return out
