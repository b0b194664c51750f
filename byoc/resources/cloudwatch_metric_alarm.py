"""``aws_cloudwatch_metric_alarm``: a single-metric CloudWatch alarm (Terraform's argument names).

Discovery reads names and tags from the tagging index, then the definitions with
DescribeAlarms batched by 100 names. The alarm's id is its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import unless_gone
from byoc.aws.tags import ADDRESS_TAG, account_id, address_of, is_owned, tag_list
from byoc.errors import CloudError
from byoc.model import Live, partition
from byoc.resources._batch import Batcher, batcher
from byoc.resources._ec2 import wait_gone
from byoc.resources._monitoring import CONFLICT_CODES, changed_props, own_tags, sync_tags
from byoc.resources._tagging import TAG_VALUES, tagged, tagged_at, tags_list_to_dict
from byoc.resources.base import ResourceType

#: DescribeAlarms takes at most 100 names per call
BATCH = 100
#: prop -> PutMetricAlarm/DescribeAlarms field, for the scalar props
_FIELDS = {
    "alarm_name": "AlarmName",
    "alarm_description": "AlarmDescription",
    "namespace": "Namespace",
    "metric_name": "MetricName",
    "statistic": "Statistic",
    "period": "Period",
    "evaluation_periods": "EvaluationPeriods",
    "datapoints_to_alarm": "DatapointsToAlarm",
    "threshold": "Threshold",
    "comparison_operator": "ComparisonOperator",
    "treat_missing_data": "TreatMissingData",
}
_ACTIONS = {
    "alarm_actions": "AlarmActions",
    "ok_actions": "OKActions",
    "insufficient_data_actions": "InsufficientDataActions",
}


class MetricAlarm(ResourceType):
    kind = "aws_cloudwatch_metric_alarm"
    service = "cloudwatch"
    force_new = frozenset({"alarm_name"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        owned = {t.resource[len("alarm:"):]: own_tags(t.tags) for t in tagged(ctx, "cloudwatch", "alarm:")}
        # alarms listed by the index but not described were deleted meanwhile
        return [self._live(a, owned[a["AlarmName"]]) for a in _describe(ctx, sorted(owned))]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look for the alarm tagged with ``address``: the tagging index asked for this
        address (and the others looked for at that moment), then the alarm it names described."""
        reader = batcher(ctx, "tagging:alarms-at", lambda: Batcher(
            lambda addresses: tagged_at(ctx, "cloudwatch", "alarm:", addresses), size=TAG_VALUES))
        for t in reader.get(address) or ():
            alarm = _named(ctx, t.resource[len("alarm:"):])
            if alarm is not None:  # listed by the index, deleted meanwhile
                return self._live(alarm, own_tags(t.tags))
        return None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        name = props["alarm_name"]
        existing = _named(ctx, name)
        if existing is not None:
            # PutMetricAlarm would silently overwrite it: carry on only with our own half-made one
            tags = tags_list_to_dict(
                ctx.client("cloudwatch").list_tags_for_resource(ResourceARN=existing["AlarmArn"])["Tags"]
            )
            if not (is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address):
                raise CloudError(
                    f"an alarm named {name} already exists and is not this cluster's {address}; "
                    "delete or rename it, or change the cluster name",
                    address=address,
                    aws_id=name,
                    code="AlreadyExists",
                )
            current = self._live(existing, own_tags(tags))
            return self.update(ctx, current, props, changed_props(current.props, _props(props)))
        _put(ctx, props, tags=props["tags"])
        # PutMetricAlarm answers nothing: the alarm is as put, under its well-known ARN
        arn = f"arn:{partition(ctx.region)}:cloudwatch:{ctx.region}:{account_id(ctx)}:alarm:{name}"
        return Live(address, self.kind, name, _props(props), {"arn": arn})

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        if changed - {"tags"}:
            _put(ctx, props)  # the full definition: PutMetricAlarm replaces every field
        if "tags" in changed:
            # PutMetricAlarm ignores Tags for an alarm that exists: tag it separately
            cw = ctx.client("cloudwatch")
            arn = live.attrs["arn"]
            sync_tags(
                ctx,
                live.props["tags"],
                props["tags"],
                tag=lambda tags: cw.tag_resource(ResourceARN=arn, Tags=tag_list(tags)),
                untag=lambda keys: cw.untag_resource(ResourceARN=arn, TagKeys=keys),
            )
        return Live(live.address, self.kind, live.id, _props(props), dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        cw = ctx.client("cloudwatch")
        unless_gone(lambda: ctx.retry(lambda: cw.delete_alarms(AlarmNames=[live.id]), codes=CONFLICT_CODES))
        wait_gone(ctx, lambda: _named(ctx, live.id) is not None, address=live.address, aws_id=live.id)

    def _live(self, alarm: Mapping[str, Any], tags: Mapping[str, str]) -> Live:
        props: dict[str, Any] = {prop: alarm.get(field) for prop, field in _FIELDS.items()}
        props |= {prop: alarm.get(field) for prop, field in _ACTIONS.items()}
        props["dimensions"] = {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or ()}
        props["tags"] = tags
        attrs = {"arn": alarm["AlarmArn"]}
        name = alarm["AlarmName"]
        return Live(address_of(tags, self.kind, name), self.kind, name, _props(props), attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly, with AWS's defaults filled in. (An alarm edited by hand into
    a metric-math or percentile one lacks some fields: they read as None/0 and show as a diff.)"""
    evaluation_periods = int(props.get("evaluation_periods") or 0)
    datapoints = props.get("datapoints_to_alarm")
    return {
        "alarm_name": props["alarm_name"],
        "alarm_description": props.get("alarm_description") or "",
        "namespace": props.get("namespace"),
        "metric_name": props.get("metric_name"),
        "dimensions": {str(k): str(v) for k, v in (props.get("dimensions") or {}).items()},
        "statistic": props.get("statistic"),
        "period": int(props.get("period") or 0),
        "evaluation_periods": evaluation_periods,
        "datapoints_to_alarm": int(datapoints) if datapoints is not None else evaluation_periods,
        "threshold": float(props.get("threshold") or 0.0),
        "comparison_operator": props.get("comparison_operator"),
        "treat_missing_data": props.get("treat_missing_data") or "missing",
        **{prop: sorted(props.get(prop) or ()) for prop in _ACTIONS},
        "tags": dict(props["tags"]),
    }


def _put(ctx: AwsContext, props: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> None:
    """PutMetricAlarm with the whole definition (Tags only count when the alarm is new)."""
    p = _props(props)
    params: dict[str, Any] = {field: p[prop] for prop, field in _FIELDS.items()}
    params |= {field: p[prop] for prop, field in _ACTIONS.items()}
    params["Dimensions"] = [{"Name": k, "Value": v} for k, v in sorted(p["dimensions"].items())]
    if tags is not None:
        params["Tags"] = tag_list(tags)
    cw = ctx.client("cloudwatch")
    ctx.retry(lambda: cw.put_metric_alarm(**params), codes=CONFLICT_CODES, timeout=120.0)


def _describe(ctx: AwsContext, names: list[str]) -> list[dict[str, Any]]:
    """The named metric alarms that exist: one DescribeAlarms per 100 names."""
    cw = ctx.client("cloudwatch")
    out: list[dict[str, Any]] = []
    for i in range(0, len(names), BATCH):
        batch = names[i : i + BATCH]
        pages = cw.get_paginator("describe_alarms").paginate(AlarmNames=batch, AlarmTypes=["MetricAlarm"])
        wanted = set(batch)
        out.extend(a for page in pages for a in page.get("MetricAlarms", ()) if a["AlarmName"] in wanted)
    return out



def _named(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    """The metric alarm called ``name``, if it exists: one DescribeAlarms for every alarm looked
    at in that moment (a node's alarms, and the other nodes')."""
    reader = batcher(ctx, "cloudwatch:alarms", lambda: Batcher(
        lambda names: {a["AlarmName"]: a for a in _describe(ctx, names)}, size=BATCH))
    return reader.get(name)


KIND = MetricAlarm()
