"""``aws_vpc_endpoint_service_allowed_principal``: one IAM principal (an account's root, a role or
a user) allowed to create interface endpoints to the cluster's endpoint service.

A permission cannot be tagged, so ownership comes from the service: every principal on the
allowlist of a service the cluster owns is the cluster's, at the address
``aws_vpc_endpoint_service_allowed_principal.<service's name>["<principal ARN>"]``. A principal
added outside byoc is therefore found as unmanaged (drift; ``--delete-unmanaged`` removes it),
and one removed outside byoc is missing (the plan adds it back). Its id is
``<service id>/<principal ARN>`` (AWS's ServicePermissionId, where it answers one, is an attribute).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import EVENTUAL_CODES, unless_gone
from byoc.aws.tags import ADDRESS_TAG
from byoc.errors import CloudError
from byoc.model import Live, make_address, parse_address
from byoc.resources._ec2 import user_tags, wait_gone
from byoc.resources.base import ResourceType
from byoc.resources.vpc_endpoint_service import KIND_NAME as SERVICE_KIND
from byoc.resources.vpc_endpoint_service import owned_services

KIND_NAME = "aws_vpc_endpoint_service_allowed_principal"
#: what a service created a moment ago may answer (EC2 reads are eventually consistent)
_NEW_SERVICE_CODES = EVENTUAL_CODES | {"InvalidVpcEndpointServiceId.NotFound",
                                       "InvalidVpcEndpointService.NotFound"}


def address_for(service_address: str, principal: str) -> str | None:
    """The principal's address by convention: the service's name, keyed by the principal's ARN."""
    try:
        kind, name, key = parse_address(service_address)
    except ValueError:
        return None
    return make_address(KIND_NAME, name, principal) if kind == SERVICE_KIND and key is None else None


def principal_id(service_id: str, principal: str) -> str:
    return f"{service_id}/{principal}"


def permissions(ctx: AwsContext, service_id: str) -> list[dict[str, Any]]:
    """The service's allowlist (AllowedPrincipals items); empty when the service is gone."""

    def read() -> list[dict[str, Any]]:
        ec2 = ctx.client("ec2")
        pages = ec2.get_paginator("describe_vpc_endpoint_service_permissions").paginate(ServiceId=service_id)
        return [p for page in pages for p in page.get("AllowedPrincipals") or ()]

    return unless_gone(read) or []


class VpcEndpointServiceAllowedPrincipal(ResourceType):
    kind = KIND_NAME
    service = "ec2"
    force_new = frozenset({"vpc_endpoint_service_id", "principal_arn"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        out = []
        for svc in owned_services(ctx):
            service_address = user_tags(svc).get(ADDRESS_TAG, "")
            for perm in permissions(ctx, svc["ServiceId"]):
                live = self._live(service_address, svc["ServiceId"], perm)
                if live is not None:
                    out.append(live)
        return out

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        return next((x for x in self.discover(ctx) if x.address == address), None)

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        """By byoc's id (``<service id>/<principal ARN>``) or AWS's ServicePermissionId."""
        return next((x for x in self.discover(ctx)
                     if aws_id in (x.id, x.attrs.get("service_permission_id"))), None)

    def claim(self, ctx: AwsContext, aws_id: str, address: str) -> None:
        """Nothing to tag: a principal is the cluster's by being on the allowlist of the cluster's
        service. One that is not there cannot be imported, only added (by apply)."""
        raise CloudError(
            f"no principal {aws_id} is on the allowlist of this cluster's endpoint service: the id "
            "is <service id>/<principal ARN> (see `byoc output`); a principal not yet allowed is "
            "added by `byoc apply`, nothing to import",
            address=address, aws_id=aws_id, code="NotClaimable",
        )

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        service_id, principal = props["vpc_endpoint_service_id"], props["principal_arn"]
        service_address = _service_address(address)
        existing = next((p for p in permissions(ctx, service_id) if p.get("Principal") == principal), None)
        if existing is None:  # look before adding: adding twice is harmless, but says nothing new
            ec2 = ctx.client("ec2")
            resp = ctx.retry(lambda: ec2.modify_vpc_endpoint_service_permissions(
                ServiceId=service_id, AddAllowedPrincipals=[principal]),
                codes=_NEW_SERVICE_CODES, timeout=min(ctx.retry_timeout, 120.0))
            added = [a for a in resp.get("AddedPrincipals") or () if a.get("Principal") == principal]
            existing = added[0] if added else {"Principal": principal}
        live = self._live(service_address, service_id, existing)
        assert live is not None
        return live

    def delete(self, ctx: AwsContext, live: Live) -> None:
        service_id, principal = live.props["vpc_endpoint_service_id"], live.props["principal_arn"]
        ec2 = ctx.client("ec2")
        unless_gone(lambda: ec2.modify_vpc_endpoint_service_permissions(
            ServiceId=service_id, RemoveAllowedPrincipals=[principal]))
        wait_gone(ctx, lambda: any(p.get("Principal") == principal for p in permissions(ctx, service_id)),
                  address=live.address, aws_id=live.id)

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """byoc's props are the provider's attributes already."""
        return dict(values)

    def _live(self, service_address: str, service_id: str, perm: Mapping[str, Any]) -> Live | None:
        principal = str(perm.get("Principal") or "")
        address = address_for(service_address, principal)
        if not principal or address is None:
            return None
        props = {"vpc_endpoint_service_id": service_id, "principal_arn": principal}
        attrs = {"id": principal_id(service_id, principal),
                 "service_permission_id": perm.get("ServicePermissionId"),
                 "principal_type": perm.get("PrincipalType")}
        return Live(address, self.kind, principal_id(service_id, principal), props, attrs)


def _service_address(address: str) -> str:
    """The address of the service a principal's address belongs to."""
    return make_address(SERVICE_KIND, parse_address(address)[1])


KIND = VpcEndpointServiceAllowedPrincipal()
