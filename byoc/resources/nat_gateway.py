"""``aws_nat_gateway``: a NAT gateway in a public subnet (Terraform's aws_nat_gateway).

Create waits through ``pending`` (1-2 minutes in AWS) and cleans up a ``failed`` gateway;
delete returns only once AWS reports it ``deleted``, so its EIP and the IGW can then go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import address_of, tag_list, tag_specs
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._ec2 import client_token, describe_owned, update_tags_only, user_tags
from byoc.resources.base import ResourceType

#: states of a NAT gateway that is gone or going (AWS keeps deleted ones visible for ~1h)
_DEAD = frozenset({"failed", "deleting", "deleted"})
_NOT_FOUND = frozenset({"NatGatewayNotFound", "InvalidNatGatewayID.NotFound"})


class NatGateway(ResourceType):
    kind = "aws_nat_gateway"
    service = "ec2"
    seconds = (100.0, 60.0)
    force_new = frozenset({"allocation_id", "subnet_id", "connectivity_type"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        # describe_owned also filters by tag client-side: moto ignores tag filters on NATs.
        nats = describe_owned(ctx, "describe_nat_gateways", "NatGateways")
        return [self._live(nat) for nat in nats if nat.get("State") not in _DEAD]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        nat = self._create_call(ctx, address, props)
        nat_id = nat["NatGatewayId"]
        try:
            # Not the nat_gateway_available waiter: it cannot tell "failed" from a timeout.
            found = ctx.poll(
                lambda: _describe(ctx, nat_id),
                lambda n: n is not None and n.get("State") != "pending",
                what=f"{nat_id} to be available",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = address, nat_id
            raise
        assert found is not None  # the poll only ends on a described gateway
        nat = found
        if nat["State"] == "failed":
            code = nat.get("FailureCode") or "NatGatewayFailed"
            message = f"NAT gateway failed: {nat.get('FailureMessage') or 'no reason given'}"
            try:
                self.delete(ctx, Live(address, self.kind, nat_id, {}, {}))
            except Exception as exc:  # report the failure, not the clean-up
                message += f" (and deleting the failed gateway failed too: {exc})"
            raise CloudError(message, address=address, aws_id=nat_id, code=code)
        if nat["State"] != "available":
            raise CloudError(
                f"NAT gateway went {nat['State']} while being created (deleted by someone else?)",
                address=address,
                aws_id=nat_id,
                code="NatGatewayGone",
            )
        return self._live({**nat, "Tags": tag_list(props["tags"])}, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        return update_tags_only(ctx, live, props, changed, _props)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        try:
            ctx.client("ec2").delete_nat_gateway(NatGatewayId=live.id)
        except Exception as exc:
            if not is_not_found(exc):
                raise
        # The EIP can be released, and the IGW detached, only once the gateway is deleted.
        try:
            ctx.poll(
                lambda: _describe(ctx, live.id),
                lambda n: n is None or n.get("State") == "deleted",
                timeout=1800.0,
                what=f"{live.id} to be deleted",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = live.address, live.id
            raise

    def _create_call(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """CreateNatGateway with a deterministic ClientToken.

        An identical retry returns the first gateway. If the token names an earlier gateway
        that has since failed or been deleted, AWS would keep handing that one back, so the
        token is salted with its id and the call made again.
        """
        params: dict[str, Any] = {
            "SubnetId": props["subnet_id"],
            "ConnectivityType": props["connectivity_type"],
            "TagSpecifications": tag_specs("natgateway", props["tags"]),
        }
        if props.get("allocation_id") is not None:
            params["AllocationId"] = props["allocation_id"]
        salt = ""
        for _ in range(3):
            token = client_token(ctx, address, props, salt)
            nat: dict[str, Any] = ctx.client("ec2").create_nat_gateway(ClientToken=token, **params)[
                "NatGateway"
            ]
            if nat.get("State") not in _DEAD:
                return nat
            salt += nat["NatGatewayId"]
        raise CloudError(
            "CreateNatGateway keeps returning a failed or deleted gateway for this request",
            address=address,
            aws_id=nat["NatGatewayId"],
            code="NatGatewayGone",
        )

    def _live(self, nat: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(nat)
        addresses = nat.get("NatGatewayAddresses") or [{}]
        primary = next((a for a in addresses if a.get("IsPrimary")), addresses[0])
        props = _props(
            {
                "allocation_id": primary.get("AllocationId") or None,
                "subnet_id": nat["SubnetId"],
                "connectivity_type": nat.get("ConnectivityType") or "public",
                "tags": tags,
            }
        )
        attrs = {
            "public_ip": primary.get("PublicIp") or None,
            "network_interface_id": primary.get("NetworkInterfaceId") or None,
        }
        aws_id = nat["NatGatewayId"]
        return Live(address or address_of(tags, self.kind, aws_id), self.kind, aws_id, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "allocation_id": props["allocation_id"],
        "subnet_id": props["subnet_id"],
        "connectivity_type": props["connectivity_type"],
        "tags": dict(props["tags"]),
    }


def _describe(ctx: AwsContext, nat_id: str) -> dict[str, Any] | None:
    """The gateway as AWS describes it now, or None when AWS does not know it (yet, or any more)."""
    try:
        nats = ctx.client("ec2").describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise
    return nats[0] if nats else None


KIND = NatGateway()
