"""The tags that mark what byoc owns (``byoc:cluster``, ``byoc:address``), the helpers the kinds
share to write, read and filter by them, the addresses of owned resources, and the caller's account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from byoc.model import Live

if TYPE_CHECKING:
    from byoc.aws.context import AwsContext

CLUSTER_TAG = "byoc:cluster"
ADDRESS_TAG = "byoc:address"


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_specs(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """EC2 TagSpecifications for a create call."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]


def tags_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def owned_filter(ctx: AwsContext) -> list[dict[str, Any]]:
    """The EC2 describe filter that selects what this cluster owns."""
    return [{"Name": f"tag:{CLUSTER_TAG}", "Values": [ctx.cluster]}]


def is_owned(ctx: AwsContext, tags: Mapping[str, str]) -> bool:
    """Tagged for this cluster: with a ``byoc:address`` it is that address's; without one it is
    unmanaged (see ``address_of``), reported by drift and removed by destroy."""
    return tags.get(CLUSTER_TAG) == ctx.cluster


def unmanaged_address(kind: str, aws_id: str) -> str:
    """The stable address of a resource tagged for the cluster without a ``byoc:address``
    (``aws_vpc.unmanaged["vpc-0abc"]``): no blueprint name, so never adopted, only unmanaged."""
    return f'{kind}.unmanaged["{aws_id}"]'


def address_of(tags: Mapping[str, str], kind: str, aws_id: str) -> str:
    """The ``byoc:address`` an owned resource carries, or its unmanaged address."""
    return tags.get(ADDRESS_TAG) or unmanaged_address(kind, aws_id)


def with_address(live: Live) -> Live:
    """``live``, or (read without a ``byoc:address``, address "") under its unmanaged address."""
    if live.address:
        return live
    return Live(unmanaged_address(live.kind, live.id), live.kind, live.id, live.props, live.attrs)


def update_ec2_tags(
    ctx: AwsContext, resource_id: str, old: Mapping[str, str], new: Mapping[str, str]
) -> None:
    """Make the tags of an EC2 resource equal ``new``."""
    ec2 = ctx.client("ec2")
    removed = [{"Key": k} for k in old if k not in new]
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if removed:
        ec2.delete_tags(Resources=[resource_id], Tags=removed)
    if changed:
        ec2.create_tags(Resources=[resource_id], Tags=tag_list(changed))


def account_id(ctx: AwsContext) -> str:
    """The caller's AWS account (one GetCallerIdentity per context): ARNs need it."""
    return ctx.once("sts", "account", lambda: str(ctx.client("sts").get_caller_identity()["Account"]))
