"""``aws_default_security_group``: the VPC's default security group, adopted (Terraform's semantics).

AWS makes it with the VPC and deletes it with the VPC; it cannot be created or deleted. "Create"
finds it, tags it as the cluster's and makes its rules what the blueprint says (none: anything put
in it by hand, or AWS's allow-all egress, is revoked). "Delete" only forgets it: byoc's tags come
off and it stays as it is until the VPC goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.tags import ADDRESS_TAG, is_owned, owned_filter, tags_dict, update_ec2_tags, with_address
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._ec2 import get_when_visible
from byoc.resources._sg_rules import from_permissions
from byoc.resources.security_group import DEFAULT_NAME, DIRECTIONS, SecurityGroup


class DefaultSecurityGroup(SecurityGroup):
    kind = "aws_default_security_group"
    service = "ec2"
    seconds = (2.0, 1.0)
    force_new = frozenset({"vpc_id"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        groups = self._describe(ctx, [*owned_filter(ctx), {"Name": "group-name", "Values": [DEFAULT_NAME]}])
        return [with_address(self._live(ctx, g)) for g in groups
                if g["GroupName"] == DEFAULT_NAME and is_owned(ctx, tags_dict(g.get("Tags")))]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        return next((live for live in self.discover(ctx) if live.address == address), None)

    def _live(self, ctx: AwsContext, group: Mapping[str, Any]) -> Live:
        gid = group["GroupId"]
        tags = {k: v for k, v in tags_dict(group.get("Tags")).items() if not k.startswith("aws:")}
        props = {
            "vpc_id": group.get("VpcId", ""),
            "ingress": from_permissions(group.get("IpPermissions") or (), gid),
            "egress": from_permissions(group.get("IpPermissionsEgress") or (), gid),
            "tags": tags,
        }
        attrs = {"id": gid, "arn": group.get("SecurityGroupArn") or "", "name": group["GroupName"],
                 "owner_id": group.get("OwnerId", "")}
        return Live(tags.get(ADDRESS_TAG, ""), self.kind, gid, props, attrs)

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        """Adopt: tag the VPC's default group first (so a run that stops here finds it by tag and
        the next plan shows its rules), then make its rules the blueprint's."""
        filters = [{"Name": "vpc-id", "Values": [props["vpc_id"]]},
                   {"Name": "group-name", "Values": [DEFAULT_NAME]}]
        groups = ctx.poll(lambda: self._describe(ctx, filters), bool, timeout=120.0,
                          what=f"the default security group of {props['vpc_id']}")
        group = groups[0]
        gid = str(group["GroupId"])
        tags = {k: v for k, v in tags_dict(group.get("Tags")).items() if not k.startswith("aws:")}
        owner = tags.get("byoc:cluster")
        if owner is not None and not is_owned(ctx, tags):
            raise CloudError(f"the default security group of {props['vpc_id']} is tagged for the cluster "
                             f"{owner}", address=address, aws_id=gid, code="Conflict")
        update_ec2_tags(ctx, gid, tags, props["tags"])
        current = self._read(ctx, gid, address)
        self._sync(ctx, current, props, DIRECTIONS)
        return self._read(ctx, gid, address)

    def _read(self, ctx: AwsContext, group_id: str, address: str) -> Live:
        group = get_when_visible(ctx, "describe_security_groups", "SecurityGroups", "GroupIds", group_id)
        live = self._live(ctx, group)
        return live if live.address else Live(address, live.kind, live.id, live.props, live.attrs)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        """Forget it: AWS deletes it with the VPC. Its rules stay as they are (empty); byoc's tags go."""
        group = self._get(ctx, live.id)
        if group is None:  # gone with its VPC
            return
        tags = {k: v for k, v in tags_dict(group.get("Tags")).items() if not k.startswith("aws:")}
        update_ec2_tags(ctx, live.id, tags, {k: v for k, v in tags.items() if k not in live.props["tags"]})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The provider's aws_default_security_group: ``ingress``/``egress`` as lists of the
        provider's rule objects (empty in byoc's blueprint); the other props are its attributes."""
        return {**values, **{d: [_provider_rule(r) for r in values.get(d) or ()] for d in DIRECTIONS}}


def _provider_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One atomic byoc rule as the provider's rule object (every attribute present)."""
    return {
        "protocol": rule["protocol"], "from_port": rule["from_port"], "to_port": rule["to_port"],
        "cidr_blocks": [rule["cidr_block"]] if "cidr_block" in rule else [],
        "ipv6_cidr_blocks": [rule["ipv6_cidr_block"]] if "ipv6_cidr_block" in rule else [],
        "prefix_list_ids": [],
        "security_groups": [rule["security_group_id"]] if "security_group_id" in rule else [],
        "self": bool(rule.get("self")),
        "description": rule.get("description") or "",
    }


KIND = DefaultSecurityGroup()
