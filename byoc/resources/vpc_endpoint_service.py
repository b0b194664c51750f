"""``aws_vpc_endpoint_service``: the PrivateLink endpoint service in front of the network load
balancer (Terraform's aws_vpc_endpoint_service), which consumers in other accounts reach through
interface endpoints in their own VPCs.

Its allowlist is not held here but in one ``aws_vpc_endpoint_service_allowed_principal`` per
principal. The load balancers and acceptance are changed in place, so a replaced load balancer
keeps the service (and the service name consumers connect to). AWS refuses to delete a service
that consumers' endpoints are still connected to; byoc never touches a consumer's endpoint and
says what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned, tag_list, tag_specs, update_ec2_tags
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._ec2 import client_token, ec2_arn, owned_items, user_tags, wait_gone
from byoc.resources.base import ResourceType

KIND_NAME = "aws_vpc_endpoint_service"
#: what DescribeVpcEndpointServiceConfigurations lists and how a service is found
DESCRIBE, KEY = "describe_vpc_endpoint_service_configurations", "ServiceConfigurations"
#: states of a service on its way out: it is gone for byoc
_GONE_STATES = frozenset({"deleting", "deleted", "failed"})
#: the code of AWS's refusal to delete a service that endpoints are still connected to (the
#: message is checked too, as the code has been seen spelled differently)
_IN_USE_CODES = frozenset({"ExistingVpcEndpointConnections", "InvalidParameter", "DependencyViolation"})


def owned_services(ctx: AwsContext) -> list[dict[str, Any]]:
    """The cluster's endpoint services (one memoised describe per discovery pass, shared with
    the allowed principals' discovery), without those being deleted. A plan whose spec and state
    have no service reads none (a full audit — drift, destroy, ``--delete-unmanaged`` — does)."""
    if ctx.expected(KIND_NAME) == {}:
        return []
    items = owned_items(ctx, DESCRIBE, KEY)
    return [s for s in items if str(s.get("ServiceState", "")).lower() not in _GONE_STATES]


class VpcEndpointService(ResourceType):
    kind = KIND_NAME
    service = "ec2"
    seconds = (5.0, 5.0)
    #: a load balancer cannot be deleted while a service fronts it: the service lets go first
    pins = frozenset({"network_load_balancer_arns"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        return [self._live(ctx, s) for s in owned_services(ctx)]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look (no memo) for the service tagged with ``address``."""
        items = ctx.client("ec2").describe_vpc_endpoint_service_configurations(
            Filters=[{"Name": f"tag:{ADDRESS_TAG}", "Values": [address]}])[KEY]
        found = [s for s in items if user_tags(s).get(ADDRESS_TAG) == address and is_owned(ctx, user_tags(s))
                 and str(s.get("ServiceState", "")).lower() not in _GONE_STATES]
        return self._live(ctx, found[0], address) if found else None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        existing = self.find(ctx, address)  # an earlier run that stopped after the create
        if existing is not None:
            changed = {k for k in _props(props) if existing.props[k] != _props(props)[k]}
            return self.update(ctx, existing, props, changed) if changed else existing
        ec2 = ctx.client("ec2")
        resp = ctx.retry(lambda: ec2.create_vpc_endpoint_service_configuration(
            NetworkLoadBalancerArns=list(props["network_load_balancer_arns"]),
            AcceptanceRequired=bool(props["acceptance_required"]),
            TagSpecifications=tag_specs("vpc-endpoint-service", props["tags"]),
            ClientToken=client_token(ctx, address, props),
        ), timeout=min(ctx.retry_timeout, 120.0))
        service_id = str(resp["ServiceConfiguration"]["ServiceId"])
        item = self._wait_available(ctx, service_id, address)
        return self._live(ctx, {**item, "Tags": tag_list(props["tags"])}, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        want = _props(props)
        params: dict[str, Any] = {}
        if "acceptance_required" in changed:
            params["AcceptanceRequired"] = want["acceptance_required"]
        if "network_load_balancer_arns" in changed:
            old, new = set(live.props["network_load_balancer_arns"]), set(want["network_load_balancer_arns"])
            if new - old:
                params["AddNetworkLoadBalancerArns"] = sorted(new - old)
            if old - new:
                params["RemoveNetworkLoadBalancerArns"] = sorted(old - new)
        if params:
            ctx.client("ec2").modify_vpc_endpoint_service_configuration(ServiceId=live.id, **params)
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], want["tags"])
        return Live(live.address, live.kind, live.id, want, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        try:
            resp = ctx.client("ec2").delete_vpc_endpoint_service_configurations(ServiceIds=[live.id])
        except Exception as exc:
            if is_not_found(exc):
                return
            if _in_use(error_code(exc), str(exc)):
                raise _in_use_error(ctx, live) from exc
            raise
        for item in resp.get("Unsuccessful") or ():
            err = item.get("Error") or {}
            code, message = str(err.get("Code") or ""), str(err.get("Message") or "no reason given")
            if code.endswith(".NotFound"):
                return
            if _in_use(code, message):
                raise _in_use_error(ctx, live)
            raise CloudError(f"deleting the endpoint service failed: {message}",
                             address=live.address, aws_id=live.id, code=code or "Refused")
        wait_gone(ctx, lambda: _get(ctx, live.id) is not None, address=live.address, aws_id=live.id)

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """byoc's props are the provider's attributes already (its allowlist is the separate
        ``aws_vpc_endpoint_service_allowed_principal`` resources, never inline)."""
        return dict(values)

    def _wait_available(self, ctx: AwsContext, service_id: str, address: str) -> dict[str, Any]:
        """The service once AWS has it ``Available`` (``Pending`` for a moment after the create)."""
        item = ctx.poll(lambda: _get(ctx, service_id), _settled, timeout=600.0,
                        what=f"{service_id} to become available")
        assert item is not None
        if str(item.get("ServiceState", "")).lower() != "available":
            raise CloudError(f"the endpoint service is {item.get('ServiceState')}, not Available: "
                             "check the network load balancer, then run `byoc apply` again",
                             address=address, aws_id=service_id, code="ServiceFailed")
        return item

    def _live(self, ctx: AwsContext, item: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(item)
        props = _props({
            "network_load_balancer_arns": item.get("NetworkLoadBalancerArns") or [],
            "acceptance_required": bool(item.get("AcceptanceRequired")),
            "tags": tags,
        })
        service_id = str(item["ServiceId"])
        lbs = props["network_load_balancer_arns"]
        # the service lives in its load balancers' account (moto answers no Owner)
        owner = str(item.get("Owner") or (lbs[0].split(":")[4] if lbs else ""))
        types = [t.get("ServiceType") for t in item.get("ServiceType") or () if t.get("ServiceType")]
        attrs = {
            "id": service_id,
            "arn": ec2_arn(ctx, owner, f"vpc-endpoint-service/{service_id}") if owner else None,
            "service_name": item.get("ServiceName"),
            "service_type": types[0] if types else None,
            "state": item.get("ServiceState"),
            "availability_zones": sorted(item.get("AvailabilityZones") or []),
            "base_endpoint_dns_names": sorted(item.get("BaseEndpointDnsNames") or []),
        }
        return Live(address or address_of(tags, self.kind, service_id), self.kind, service_id, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly (the load balancers as a sorted list)."""
    return {
        "network_load_balancer_arns": sorted(props["network_load_balancer_arns"]),
        "acceptance_required": bool(props["acceptance_required"]),
        "tags": dict(props["tags"]),
    }


def _get(ctx: AwsContext, service_id: str) -> dict[str, Any] | None:
    """The service by id; None when AWS does not know it, or lists it as deleted."""
    try:
        items = ctx.client("ec2").describe_vpc_endpoint_service_configurations(ServiceIds=[service_id])[KEY]
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise
    live = [s for s in items if str(s.get("ServiceState", "")).lower() != "deleted"]
    return dict(live[0]) if live else None


def _settled(item: dict[str, Any] | None) -> bool:
    return item is not None and str(item.get("ServiceState", "")).lower() != "pending"


def _in_use(code: str | None, message: str) -> bool:
    text = message.lower()
    return code == "ExistingVpcEndpointConnections" or (
        code in _IN_USE_CODES and "endpoint" in text and ("connection" in text or "existing" in text))


def _in_use_error(ctx: AwsContext, live: Live) -> CloudError:
    return CloudError(
        "AWS will not delete the endpoint service while consumers' interface endpoints are "
        "connected to it, and byoc never deletes or rejects a consumer's endpoint. List them with "
        f"`aws ec2 describe-vpc-endpoint-connections --region {ctx.region} --filters "
        f"Name=service-id,Values={live.id}`; ask their owners to delete them, or cut them off with "
        f"`aws ec2 reject-vpc-endpoint-connections --region {ctx.region} --service-id {live.id} "
        "--vpc-endpoint-ids vpce-…`; then run the command again",
        address=live.address, aws_id=live.id, code="ExistingVpcEndpointConnections",
    )


KIND = VpcEndpointService()
