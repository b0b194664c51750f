"""Hooks that make moto behave like AWS where moto is stricter or simpler (a seam, not a fake).

Each hook is registered on a real boto3 client talking to moto and adjusts moto's own state the
way AWS would, using moto's own API.
"""

from __future__ import annotations

from typing import Any


def free_eips_of_deleted_nat_gateways(ec2: Any) -> None:
    """AWS disassociates a NAT gateway's Elastic IPs when the gateway is deleted; moto keeps them
    associated (so a new NAT gateway on the same EIP fails with Resource.AlreadyAssociated)."""

    def after_delete(parsed: dict[str, Any], **kwargs: Any) -> None:
        nat_id = parsed.get("NatGatewayId")
        if not nat_id:
            return
        for nat in ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]:
            for addr in nat.get("NatGatewayAddresses", []):
                if addr.get("AssociationId"):
                    ec2.disassociate_address(AssociationId=addr["AssociationId"])

    ec2.meta.events.register_first("after-call.ec2.DeleteNatGateway", after_delete)
