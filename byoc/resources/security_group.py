"""aws_security_group: a VPC security group with inline ingress/egress rules (Terraform's shape).

Rules are atomic dicts (see ``_sg_rules``); updates authorize what is missing, update changed
descriptions and revoke what is no longer wanted, including AWS's default allow-all egress.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import (
    ADDRESS_TAG,
    is_owned,
    owned_filter,
    tag_specs,
    tags_dict,
    update_ec2_tags,
    with_address,
)
from byoc.model import Live
from byoc.resources._ec2 import delete_then_wait, ec2_arn, get_one, get_when_visible
from byoc.resources._sg_rules import Rule, diff_rules, from_permissions, provider_rules, to_permissions
from byoc.resources.base import ResourceType

DIRECTIONS = ("ingress", "egress")
#: the rule AWS puts in every new VPC security group: all traffic out to any IPv4 address
NEW_GROUP_EGRESS = ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},)
#: the name of a VPC's default group (no other group may have it): aws_default_security_group's
DEFAULT_NAME = "default"


class SecurityGroup(ResourceType):
    kind = "aws_security_group"
    service = "ec2"
    seconds = (3.0, 5.0)
    force_new = frozenset({"name", "description", "vpc_id"})
    #: a rule naming another group blocks deleting that group
    pins = frozenset({"ingress", "egress"})

    # -- reading -----------------------------------------------------------------------------
    def _describe(self, ctx: AwsContext, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pages = (
            ctx.client("ec2").get_paginator("describe_security_groups").paginate(Filters=filters)
        )
        return [g for page in pages for g in page["SecurityGroups"]]

    def _live(self, ctx: AwsContext, group: Mapping[str, Any]) -> Live:
        gid = group["GroupId"]
        tags = {k: v for k, v in tags_dict(group.get("Tags")).items() if not k.startswith("aws:")}
        props = {
            "name": group["GroupName"],
            "description": group.get("Description", ""),
            "vpc_id": group.get("VpcId", ""),
            "ingress": from_permissions(group.get("IpPermissions") or (), gid),
            "egress": from_permissions(group.get("IpPermissionsEgress") or (), gid),
            "tags": tags,
        }
        owner = group.get("OwnerId", "")
        arn = group.get("SecurityGroupArn") or (
            ec2_arn(ctx, owner, f"security-group/{gid}")
        )
        return Live(tags.get(ADDRESS_TAG, ""), self.kind, gid, props, {"id": gid, "arn": arn})

    def _get(self, ctx: AwsContext, group_id: str) -> dict[str, Any] | None:
        return get_one(ctx, "describe_security_groups", "SecurityGroups", "GroupIds", group_id)

    def _read(self, ctx: AwsContext, group_id: str, address: str) -> Live:
        group = get_when_visible(ctx, "describe_security_groups", "SecurityGroups", "GroupIds", group_id)
        live = self._live(ctx, group)
        return live if live.address else Live(address, live.kind, live.id, live.props, live.attrs)

    def discover(self, ctx: AwsContext) -> list[Live]:
        groups = self._describe(ctx, owned_filter(ctx))
        return [with_address(self._live(ctx, g)) for g in groups
                if is_owned(ctx, tags_dict(g.get("Tags"))) and g["GroupName"] != DEFAULT_NAME]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look (no memo) for the group tagged with ``address``."""
        filters = owned_filter(ctx)  # no tag:byoc:address filter: moto reads its [ ] as a glob
        found = [self._live(ctx, g) for g in self._describe(ctx, filters) if g["GroupName"] != DEFAULT_NAME]
        return next((live for live in found if live.address == address), None)

    # -- writing -----------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        try:
            gid = ec2.create_security_group(
                GroupName=props["name"],
                Description=props["description"],
                VpcId=props["vpc_id"],
                TagSpecifications=tag_specs("security-group", props["tags"]),
            )["GroupId"]
        except ClientError as exc:
            if error_code(exc) != "InvalidGroup.Duplicate":
                raise
            gid = self._adopt(ctx, address, props, exc)
            current = self._read(ctx, gid, address)
            self._sync(ctx, current, props, DIRECTIONS)
            update_ec2_tags(ctx, gid, current.props["tags"], props["tags"])
            return self._read(ctx, gid, address)
        # A new group holds what AWS gives every new VPC group, AWS's allow-all IPv4 egress, and
        # the tags it was made with: its rules are set without reading it first, all at once.
        new = Live(address, self.kind, gid, {**props, "ingress": [],
                                             "egress": from_permissions(NEW_GROUP_EGRESS, gid)}, {})
        self._sync(ctx, new, props, DIRECTIONS, at_once=True)
        live = self._read(ctx, gid, address)
        unlike = tuple(d for d in DIRECTIONS if _differ(live.props[d], props[d]))
        if unlike:  # the group was not as new groups are (another default rule): set them from what is
            self._sync(ctx, live, props, unlike)
            live = self._read(ctx, gid, address)
        return live

    def _adopt(
        self, ctx: AwsContext, address: str, props: Mapping[str, Any], exc: ClientError
    ) -> str:
        """The name is taken: carry on with the group if it is ours under this address (an
        earlier create that did not finish), else report the clash."""
        filters = [
            {"Name": "group-name", "Values": [props["name"]]},
            {"Name": "vpc-id", "Values": [props["vpc_id"]]},
        ]
        for group in self._describe(ctx, filters):
            tags = tags_dict(group.get("Tags"))
            if is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address:
                return str(group["GroupId"])
        raise exc

    def update(
        self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]
    ) -> Live:
        directions = tuple(d for d in DIRECTIONS if d in changed)
        if directions:
            self._sync(ctx, self._read(ctx, live.id, live.address), props, directions)
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
        return self._read(ctx, live.id, live.address)

    def _sync(
        self, ctx: AwsContext, current: Live, props: Mapping[str, Any], directions: tuple[str, ...],
        *, at_once: bool = False,
    ) -> None:
        """Bring the group's rules in ``directions`` from ``current`` to ``props``: per direction,
        authorize what is missing before revoking what is no longer wanted (a group in use keeps
        its traffic meanwhile); ``at_once`` (a group nothing uses yet): every call side by side."""
        ec2 = ctx.client("ec2")
        gid = current.id
        diffs = {way: diff_rules(current.props[way], props[way]) for way in directions}
        if at_once and not any(d.redescribe or d.readd for d in diffs.values()):
            ctx.together(*(
                lambda call=call, rules=rules, tolerate=tolerate: self._apply(
                    ctx, call, gid, rules, tolerate=tolerate, descriptions=tolerate.endswith("Duplicate"))
                for direction, d in diffs.items()
                for call, rules, tolerate in (
                    (_rule_call(ec2, "authorize", direction), d.add, "InvalidPermission.Duplicate"),
                    (_rule_call(ec2, "revoke", direction), d.remove, "InvalidPermission.NotFound"))
                if rules
            ))
            return

        def sync(direction: str) -> None:
            authorize, revoke = _rule_call(ec2, "authorize", direction), _rule_call(ec2, "revoke", direction)
            redescribe = _rule_call(ec2, "update_security_group_rule_descriptions", direction)
            d = diffs[direction]
            self._apply(ctx, authorize, gid, d.add, tolerate="InvalidPermission.Duplicate")
            if d.redescribe:
                redescribe(GroupId=gid, IpPermissions=to_permissions(d.redescribe, gid))
            self._apply(
                ctx,
                revoke,
                gid,
                d.remove,
                tolerate="InvalidPermission.NotFound",
                descriptions=False,
            )
            self._apply(ctx, authorize, gid, d.readd, tolerate="InvalidPermission.Duplicate")

        # ingress and egress rules are independent of each other
        ctx.together(*(lambda d=d: sync(d) for d in directions))

    def _apply(
        self,
        ctx: AwsContext,
        call: Any,
        gid: str,
        rules: list[Rule],
        *,
        tolerate: str,
        descriptions: bool = True,
    ) -> None:
        """One call for all ``rules``; if AWS refuses it for ``tolerate`` (a duplicate rule, an
        already-revoked one) fall back to one call per rule, ignoring that error."""
        if not rules:
            return

        def one(batch: list[Rule]) -> None:
            perms = to_permissions(batch, gid, descriptions=descriptions)
            # a group referenced in a rule may have been created a moment ago
            ctx.retry(
                lambda: call(GroupId=gid, IpPermissions=perms),
                codes={"InvalidGroup.NotFound"},
                timeout=min(ctx.retry_timeout, 60.0),
            )

        try:
            one(rules)
        except ClientError as exc:
            if error_code(exc) != tolerate:
                raise
            for rule in rules if len(rules) > 1 else ():
                try:
                    one([rule])
                except ClientError as exc2:
                    if error_code(exc2) != tolerate:
                        raise

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        # DependencyViolation / InvalidGroup.InUse: ENIs of deleted instances or load balancers,
        # or another group's rule, still hold it for a while
        delete_then_wait(ctx, live, lambda: ec2.delete_security_group(GroupId=live.id),
                         lambda: self._get(ctx, live.id) is not None, timeout=300)

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Rules as the provider's rule objects (sources gathered, ``cidr_blocks`` lists)."""
        return {k: provider_rules(v) if k in DIRECTIONS else v for k, v in values.items()}


def _rule_call(ec2: Any, verb: str, direction: str) -> Any:
    """The EC2 client's call ``verb`` (authorize, revoke, update_…_descriptions) for ``direction``."""
    if verb in ("authorize", "revoke"):
        verb = f"{verb}_security_group"
    return getattr(ec2, f"{verb}_{direction}")


def _differ(current: list[Rule], desired: list[Rule]) -> bool:
    """Whether the rules in place differ from those wanted (anything to authorize, update or revoke)."""
    d = diff_rules(current, desired)
    return bool(d.add or d.redescribe or d.remove or d.readd)


KIND = SecurityGroup()
