"""``aws_subnet``: a subnet of the cluster's VPC in one availability zone (Terraform's aws_subnet).

Only ``map_public_ip_on_launch`` and tags change in place; VPC, CIDR and AZ replace it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.tags import address_of, tag_list, tag_specs, update_ec2_tags
from byoc.model import Live
from byoc.resources._ec2 import delete_then_wait, ec2_arn, found, owned_items, user_tags
from byoc.resources.base import ResourceType

_LIVE_STATES = frozenset({"pending", "available"})


class Subnet(ResourceType):
    kind = "aws_subnet"
    service = "ec2"
    seconds = (2.0, 2.0)
    force_new = frozenset({"vpc_id", "cidr_block", "availability_zone"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        subnets = owned_items(ctx, "describe_subnets", "Subnets")
        return [self._live(ctx, s) for s in subnets if s.get("State", "available") in _LIVE_STATES]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        subnet = ec2.create_subnet(
            VpcId=props["vpc_id"],
            CidrBlock=props["cidr_block"],
            AvailabilityZone=props["availability_zone"],
            TagSpecifications=tag_specs("subnet", props["tags"]),
        )["Subnet"]
        subnet_id = subnet["SubnetId"]
        ctx.poll(
            lambda: ctx.retry(
                lambda: ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"],
                codes={"InvalidSubnetID.NotFound"},
            ),
            lambda subnets: bool(subnets) and all(s["State"] == "available" for s in subnets),
            what=f"{subnet_id} to be available",
        )
        public = bool(props["map_public_ip_on_launch"])
        if public != bool(subnet.get("MapPublicIpOnLaunch", False)):
            _set_public(ctx, subnet_id, public)
        subnet = {**subnet, "MapPublicIpOnLaunch": public, "Tags": tag_list(props["tags"])}
        return self._live(ctx, subnet, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        if "map_public_ip_on_launch" in changed:
            _set_public(ctx, live.id, bool(props["map_public_ip_on_launch"]))
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
        return Live(live.address, self.kind, live.id, _props(props), dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        # ENIs of a deleted NAT gateway or load balancer leave the subnet asynchronously.
        delete_then_wait(ctx, live, lambda: ec2.delete_subnet(SubnetId=live.id),
                         lambda: found(lambda: ec2.describe_subnets(SubnetIds=[live.id])["Subnets"]),
                         codes={"DependencyViolation"})

    def _live(self, ctx: AwsContext, subnet: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(subnet)
        props = _props(
            {
                "vpc_id": subnet["VpcId"],
                "cidr_block": subnet["CidrBlock"],
                "availability_zone": subnet["AvailabilityZone"],
                "map_public_ip_on_launch": subnet.get("MapPublicIpOnLaunch", False),
                "tags": tags,
            }
        )
        arn = subnet.get("SubnetArn") or ec2_arn(ctx, subnet["OwnerId"], f"subnet/{subnet['SubnetId']}")
        aws_id = subnet["SubnetId"]
        return Live(address or address_of(tags, self.kind, aws_id), self.kind, aws_id, props, {"arn": arn})


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "vpc_id": props["vpc_id"],
        "cidr_block": props["cidr_block"],
        "availability_zone": props["availability_zone"],
        "map_public_ip_on_launch": bool(props["map_public_ip_on_launch"]),
        "tags": dict(props["tags"]),
    }


def _set_public(ctx: AwsContext, subnet_id: str, public: bool) -> None:
    ctx.client("ec2").modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": public})


KIND = Subnet()
