"""``aws_vpc``: the cluster's VPC, with its two DNS attributes (Terraform's aws_vpc).

byoc does not manage the default security group or main route table AWS makes with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import address_of, tag_list, tag_specs, update_ec2_tags
from byoc.model import Live
from byoc.resources._ec2 import delete_then_wait, describe_owned, ec2_arn, found, user_tags
from byoc.resources.base import ResourceType

#: prop -> the attribute name of DescribeVpcAttribute/ModifyVpcAttribute
_DNS = {"enable_dns_support": "enableDnsSupport", "enable_dns_hostnames": "enableDnsHostnames"}
#: what CreateVpc gives a new (non-default) VPC
_AWS_DEFAULTS = {"enable_dns_support": True, "enable_dns_hostnames": False}


class Vpc(ResourceType):
    kind = "aws_vpc"
    service = "ec2"
    seconds = (3.0, 2.0)
    force_new = frozenset({"cidr_block"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        vpcs = [v for v in describe_owned(ctx, "describe_vpcs", "Vpcs") if v.get("State") != "deleted"]
        if not vpcs:
            return []
        out = []
        for v in vpcs:
            dns = _read_dns(ctx, v["VpcId"])
            if dns is not None:
                out.append(self._live(ctx, v, dns))
        return out

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        vpc = ec2.create_vpc(CidrBlock=props["cidr_block"], TagSpecifications=tag_specs("vpc", props["tags"]))
        vpc = vpc["Vpc"]
        vpc_id = vpc["VpcId"]
        ctx.poll(
            lambda: ctx.retry(
                lambda: ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"], codes={"InvalidVpcID.NotFound"}
            ),
            lambda vs: bool(vs) and all(v["State"] == "available" for v in vs),
            what=f"{vpc_id} to be available",
        )
        dns = {k: bool(props[k]) for k in _DNS}
        _set_dns(ctx, vpc_id, _AWS_DEFAULTS, dns)
        vpc["Tags"] = tag_list(props["tags"])
        return self._live(ctx, vpc, dns, address=address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        if changed & set(_DNS):
            _set_dns(ctx, live.id, live.props, props)
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
        return Live(live.address, self.kind, live.id, _props(props), dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")

        def exists() -> bool:
            return found(lambda: [v for v in ec2.describe_vpcs(VpcIds=[live.id])["Vpcs"]
                                  if v["State"] != "deleted"])

        # ENIs of deleted NAT gateways / load balancers leave the VPC asynchronously.
        delete_then_wait(ctx, live, lambda: ec2.delete_vpc(VpcId=live.id), exists,
                         codes={"DependencyViolation"})

    def _live(
        self,
        ctx: AwsContext,
        vpc: Mapping[str, Any],
        dns: Mapping[str, bool],
        address: str | None = None,
    ) -> Live:
        """The VPC as byoc sees it. Its default security group and main route table are not read:
        byoc manages neither, nothing refers to them, and reading them cost two calls a plan."""
        tags = user_tags(vpc)
        props = _props({"cidr_block": vpc["CidrBlock"], **dns, "tags": tags})
        # owner_id: the account, which the flow-log role's trust policy names (aws:SourceAccount)
        attrs = {"arn": ec2_arn(ctx, vpc["OwnerId"], f"vpc/{vpc['VpcId']}"), "owner_id": vpc["OwnerId"]}
        aws_id = vpc["VpcId"]
        return Live(address or address_of(tags, self.kind, aws_id), self.kind, aws_id, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "cidr_block": props["cidr_block"],
        "enable_dns_support": bool(props["enable_dns_support"]),
        "enable_dns_hostnames": bool(props["enable_dns_hostnames"]),
        "tags": dict(props["tags"]),
    }


def _read_dns(ctx: AwsContext, vpc_id: str) -> dict[str, bool] | None:
    """The two DNS flags (one DescribeVpcAttribute each); None if the VPC vanished meanwhile."""
    ec2 = ctx.client("ec2")
    out = {}
    for prop, attribute in _DNS.items():
        try:
            resp = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        out[prop] = bool(resp[attribute[0].upper() + attribute[1:]]["Value"])
    return out


def _set_dns(ctx: AwsContext, vpc_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """One ModifyVpcAttribute per changed flag; support goes on before hostnames, off after."""
    ec2 = ctx.client("ec2")
    order = list(_DNS) if new["enable_dns_support"] else list(reversed(_DNS))
    for prop in order:
        if bool(old[prop]) == bool(new[prop]):
            continue
        params = {_DNS[prop][0].upper() + _DNS[prop][1:]: {"Value": bool(new[prop])}}
        ctx.retry(
            partial(ec2.modify_vpc_attribute, VpcId=vpc_id, **params),
            codes={"InvalidVpcID.NotFound"},
            timeout=60.0,
        )


KIND = Vpc()
