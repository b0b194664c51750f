"""``aws_internet_gateway``: the VPC's internet gateway (Terraform's aws_internet_gateway).

A changed ``vpc_id`` detaches and re-attaches in place; ``vpc_id`` is None while detached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import address_of, tag_list, tag_specs
from byoc.model import Live
from byoc.resources._ec2 import describe_owned, ec2_arn, found, update_tags_only, user_tags, wait_gone
from byoc.resources.base import ResourceType

_ATTACHED = frozenset({"available", "attached"})


class InternetGateway(ResourceType):
    kind = "aws_internet_gateway"
    service = "ec2"
    seconds = (3.0, 5.0)
    force_new = frozenset()
    #: an attached gateway blocks deleting its VPC: a replaced VPC gets a new gateway
    pins = frozenset({"vpc_id"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        igws = describe_owned(ctx, "describe_internet_gateways", "InternetGateways")
        return [self._live(ctx, igw) for igw in igws]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        igw = ec2.create_internet_gateway(TagSpecifications=tag_specs("internet-gateway", props["tags"]))[
            "InternetGateway"
        ]
        if props["vpc_id"] is not None:
            _attach(ctx, igw["InternetGatewayId"], props["vpc_id"])
        igw = {
            **igw,
            "Tags": tag_list(props["tags"]),
            "Attachments": [{"State": "available", "VpcId": props["vpc_id"]}]
            if props["vpc_id"] is not None
            else [],
        }
        return self._live(ctx, igw, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        if "vpc_id" in changed:
            if live.props["vpc_id"] is not None:
                _detach(ctx, live.id, live.props["vpc_id"])
            if props["vpc_id"] is not None:
                _attach(ctx, live.id, props["vpc_id"])
        return update_tags_only(ctx, live, props, changed, _props)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        try:
            (igw,) = ec2.describe_internet_gateways(InternetGatewayIds=[live.id])["InternetGateways"]
        except Exception as exc:
            if is_not_found(exc):
                return
            raise
        # Detach from whatever AWS says it is attached to now, not what the plan last saw.
        for attachment in igw.get("Attachments") or ():
            _detach(ctx, live.id, attachment["VpcId"])
        try:
            ctx.retry(
                lambda: ec2.delete_internet_gateway(InternetGatewayId=live.id),
                codes={"DependencyViolation"},
            )
        except Exception as exc:
            if not is_not_found(exc):
                raise
        wait_gone(
            ctx,
            lambda: found(
                lambda: ec2.describe_internet_gateways(InternetGatewayIds=[live.id])["InternetGateways"]
            ),
            address=live.address,
            aws_id=live.id,
        )

    def _live(self, ctx: AwsContext, igw: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(igw)
        attached = [a["VpcId"] for a in igw.get("Attachments") or () if a.get("State") in _ATTACHED]
        props = _props({"vpc_id": attached[0] if attached else None, "tags": tags})
        igw_id = igw["InternetGatewayId"]
        arn = ec2_arn(ctx, igw["OwnerId"], f"internet-gateway/{igw_id}")
        return Live(address or address_of(tags, self.kind, igw_id), self.kind, igw_id, props, {"arn": arn})


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {"vpc_id": props["vpc_id"], "tags": dict(props["tags"])}


def _attach(ctx: AwsContext, igw_id: str, vpc_id: str) -> None:
    """Attach and wait until the attachment is available (a new IGW may not be visible yet)."""
    ec2 = ctx.client("ec2")
    # attached already: the SDK repeated a call whose first answer was lost
    ctx.mutate(
        lambda: ctx.retry(
            lambda: ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id),
            codes={"InvalidInternetGatewayID.NotFound"},
            timeout=120.0,
        ),
        already={"Resource.AlreadyAssociated"},
        done=lambda: vpc_id in _attachments(ctx, igw_id),
    )
    ctx.poll(
        lambda: ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"],
        lambda igws: any(
            a["VpcId"] == vpc_id and a.get("State") in _ATTACHED
            for igw in igws
            for a in igw.get("Attachments") or ()
        ),
        timeout=300.0,
        what=f"{igw_id} to attach to {vpc_id}",
    )


def _detach(ctx: AwsContext, igw_id: str, vpc_id: str) -> None:
    """Detach, retrying while the VPC still has mapped public addresses; not attached is fine."""
    ec2 = ctx.client("ec2")
    try:
        ctx.retry(
            lambda: ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id),
            codes={"DependencyViolation"},
        )
    except Exception as exc:
        if not is_not_found(exc):  # Gateway.NotAttached, or IGW/VPC already gone
            raise
    # AWS passes through "detaching"; attaching elsewhere or deleting must wait for the end.
    ctx.poll(
        lambda: _attachments(ctx, igw_id),
        lambda vpcs: vpc_id not in vpcs,
        timeout=300.0,
        what=f"{igw_id} to detach from {vpc_id}",
    )


def _attachments(ctx: AwsContext, igw_id: str) -> list[str]:
    """The VPCs the IGW is attached or attaching/detaching to (none when the IGW is gone)."""
    try:
        igws = ctx.client("ec2").describe_internet_gateways(InternetGatewayIds=[igw_id])
    except Exception as exc:
        if is_not_found(exc):
            return []
        raise
    return [
        a["VpcId"]
        for igw in igws["InternetGateways"]
        for a in igw.get("Attachments") or ()
        if a.get("State") != "detached"
    ]


KIND = InternetGateway()
