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


def https_bucket_policies(monkeypatch: Any) -> None:
    """AWS evaluates a bucket policy's ``aws:SecureTransport`` from the request: byoc's calls go
    over HTTPS, so the cluster bucket's "deny unless TLS" statement does not match them. moto
    (in-process and server) cannot evaluate a ``Bool`` condition and counts it as matching, so
    every object call is denied. In-process requests are HTTPS (boto3 sends them to
    ``https://…amazonaws.com`` and moto intercepts them), so this evaluates the bucket policy as
    AWS would for them: a statement conditioned on ``aws:SecureTransport`` = false does not apply.
    The policy stored on the bucket is left untouched."""
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def insecure_only(stmt: dict[str, Any]) -> bool:
        value = (stmt.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
        return value in ("false", ["false"], False, [False])

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        doc = json.loads(self.policy.decode())
        stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        kept = [s for s in stmts if not insecure_only(s)]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**doc, "Statement": kept})).is_action_permitted(action, resource)

    monkeypatch.setattr(FakeBucket, "get_permission", get_permission)
