"""``aws_eip``: an Elastic IP address, e.g. for a NAT gateway (Terraform's aws_eip).

Its id is the AllocationId. Release retries the errors AWS returns for a while after the NAT
gateway that held the address is deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.tags import address_of, tag_list, tag_specs
from byoc.model import Live
from byoc.resources._ec2 import describe_owned, found, is_gone, update_tags_only, user_tags, wait_gone
from byoc.resources.base import ResourceType

#: ReleaseAddress errors that clear once the address's last holder is fully gone
_RELEASE_RETRY = frozenset({"AuthFailure", "InvalidIPAddress.InUse", "InvalidNetworkInterfaceID.NotFound"})


class Eip(ResourceType):
    kind = "aws_eip"
    service = "ec2"
    seconds = (1.0, 2.0)
    force_new = frozenset({"domain"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        # DescribeAddresses has no paginator: it returns every address in one call.
        return [self._live(a) for a in describe_owned(ctx, "describe_addresses", "Addresses")]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        resp = ctx.client("ec2").allocate_address(
            Domain=props["domain"], TagSpecifications=tag_specs("elastic-ip", props["tags"])
        )
        return self._live({**resp, "Tags": tag_list(props["tags"])}, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        return update_tags_only(ctx, live, props, changed, _props)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        try:
            ctx.retry(lambda: ec2.release_address(AllocationId=live.id), codes=_RELEASE_RETRY)
        except Exception as exc:
            # InvalidNetworkInterfaceID.NotFound means "try again", not "the address is gone".
            if not is_gone(exc, unless=_RELEASE_RETRY):
                raise
        wait_gone(
            ctx,
            lambda: found(lambda: ec2.describe_addresses(AllocationIds=[live.id])["Addresses"]),
            address=live.address,
            aws_id=live.id,
        )

    def _live(self, item: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(item)
        props = _props({"domain": item.get("Domain", "vpc"), "tags": tags})
        attrs = {"public_ip": item["PublicIp"], "allocation_id": item["AllocationId"]}
        aws_id = item["AllocationId"]
        return Live(address or address_of(tags, self.kind, aws_id), self.kind, aws_id, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {"domain": props["domain"], "tags": dict(props["tags"])}


KIND = Eip()
