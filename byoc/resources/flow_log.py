"""``aws_flow_log``: the VPC's flow log into a CloudWatch Logs group (Terraform's aws_flow_log).

A flow log cannot be changed, only its tags: everything else replaces it. CreateFlowLogs answers a
per-resource refusal in ``Unsuccessful`` rather than as an error (moto raises instead); both are
handled, and a role too new for the service to assume is waited out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import address_of, tag_list, tag_specs
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._ec2 import client_token, describe_owned, update_tags_only, user_tags, wait_gone
from byoc.resources.base import ResourceType

#: what byoc manages of a flow log (the rest keeps AWS's defaults: log format, no cross-account role)
PROPS = ("vpc_id", "traffic_type", "log_destination_type", "log_destination", "iam_role_arn",
         "max_aggregation_interval")

#: the codes a refusal for a role the service cannot assume (yet) comes with
_PROPAGATION_CODES = frozenset({"InvalidParameter", "InvalidParameterValue", "400", "FlowLogRefused"})


class FlowLog(ResourceType):
    kind = "aws_flow_log"
    service = "ec2"
    seconds = (3.0, 2.0)
    force_new = frozenset(PROPS)

    def discover(self, ctx: AwsContext) -> list[Live]:
        return [self._live(fl) for fl in describe_owned(ctx, "describe_flow_logs", "FlowLogs")]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look (no memo) for the flow log tagged with ``address``."""
        return next((x for x in self.discover(ctx) if x.address == address), None)

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        existing = self.find(ctx, address)  # an earlier run that stopped after CreateFlowLogs
        if existing is not None:
            clash = sorted(k for k in PROPS if existing.props[k] != _props(props)[k])
            if clash:
                raise CloudError(
                    f"a flow log for this address already exists with different {', '.join(clash)}; "
                    "run `byoc plan` again", address=address, aws_id=existing.id, code="Conflict")
            return self.update(ctx, existing, props, {"tags"})
        ec2 = ctx.client("ec2")
        params = {
            "ResourceIds": [props["vpc_id"]],
            "ResourceType": "VPC",
            "TrafficType": props["traffic_type"],
            "LogDestinationType": props["log_destination_type"],
            "LogDestination": props["log_destination"],
            "DeliverLogsPermissionArn": props["iam_role_arn"],
            "MaxAggregationInterval": int(props["max_aggregation_interval"]),
            "TagSpecifications": tag_specs("vpc-flow-log", props["tags"]),
            "ClientToken": client_token(ctx, address, props),
        }

        def call() -> str:
            resp = ec2.create_flow_logs(**params)
            for item in resp.get("Unsuccessful") or ():
                err = item.get("Error") or {}
                raise ClientError({"Error": {"Code": err.get("Code") or "FlowLogRefused",
                                             "Message": err.get("Message") or "no reason given"}},
                                  "CreateFlowLogs")
            return str(resp["FlowLogIds"][0])

        # IAM is eventually consistent: the delivery role may be too new to be assumed
        flow_log_id = ctx.retry(call, codes=_PROPAGATION_CODES, match=_is_role_propagation,
                                timeout=min(ctx.retry_timeout, 120.0))
        found = ctx.poll(lambda: _get(ctx, flow_log_id), lambda f: f is not None, timeout=120.0,
                         what=f"{flow_log_id} to become visible")
        assert found is not None
        return self._live({**found, "Tags": tag_list(props["tags"])}, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        return update_tags_only(ctx, live, props, changed, _props)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        try:
            resp = ctx.client("ec2").delete_flow_logs(FlowLogIds=[live.id])
        except ClientError as exc:
            if is_not_found(exc):
                return
            raise
        for item in resp.get("Unsuccessful") or ():
            err = item.get("Error") or {}
            if str(err.get("Code", "")).endswith("NotFound"):
                return
            raise CloudError(f"deleting the flow log failed: {err.get('Message') or 'no reason given'}",
                             address=live.address, aws_id=live.id, code=err.get("Code") or "FlowLogRefused")
        wait_gone(ctx, lambda: _get(ctx, live.id) is not None, address=live.address, aws_id=live.id)

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """byoc's props are the provider's attributes already (``log_destination`` an ARN)."""
        return dict(values)

    def _live(self, fl: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(fl)
        props = _props({
            "vpc_id": fl.get("ResourceId"),
            "traffic_type": fl.get("TrafficType"),
            "log_destination_type": fl.get("LogDestinationType") or "cloud-watch-logs",
            "log_destination": fl.get("LogDestination") or None,
            "iam_role_arn": fl.get("DeliverLogsPermissionArn") or None,
            "max_aggregation_interval": fl.get("MaxAggregationInterval") or 600,
            "tags": tags,
        })
        aws_id = str(fl["FlowLogId"])
        attrs = {"id": aws_id, "delivery_status": fl.get("DeliverLogsStatus"),
                 "delivery_error": fl.get("DeliverLogsErrorMessage")}
        return Live(address or address_of(tags, self.kind, aws_id), self.kind, aws_id, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly (a log group's ARN without the ``:*`` some answers carry)."""
    dest = props.get("log_destination")
    if isinstance(dest, str) and dest.endswith(":*"):
        dest = dest[:-2]
    return {
        "vpc_id": props["vpc_id"],
        "traffic_type": props["traffic_type"],
        "log_destination_type": props["log_destination_type"],
        "log_destination": dest,
        "iam_role_arn": props["iam_role_arn"],
        "max_aggregation_interval": int(props["max_aggregation_interval"]),
        "tags": dict(props["tags"]),
    }


def _get(ctx: AwsContext, flow_log_id: str) -> dict[str, Any] | None:
    try:
        items = ctx.client("ec2").describe_flow_logs(FlowLogIds=[flow_log_id])["FlowLogs"]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return dict(items[0]) if items else None


def _is_role_propagation(exc: BaseException) -> bool:
    """``Unable to assume given IAM role``: the delivery role is too new for the service to see."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return "assume" in message and "role" in message


KIND = FlowLog()
