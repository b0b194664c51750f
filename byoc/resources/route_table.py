"""aws_route_table: a VPC route table with inline routes (Terraform's ``route`` blocks).

Discovery shares one DescribeRouteTables per pass with aws_route_table_association (memo key
``describe_route_tables``); on update, routes are diffed by destination CIDR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import (
    ADDRESS_TAG,
    is_owned,
    owned_filter,
    tag_specs,
    tags_dict,
    update_ec2_tags,
    with_address,
)
from byoc.model import Live, canonical_json
from byoc.resources._ec2 import (
    client_token,
    delete_then_wait,
    ec2_arn,
    get_one,
    get_when_visible,
    owned_items,
)
from byoc.resources.base import ResourceType

#: a route's target prop -> AWS's field, the same in Route and in Create/ReplaceRoute
TARGETS = {
    "gateway_id": "GatewayId",
    "nat_gateway_id": "NatGatewayId",
    "transit_gateway_id": "TransitGatewayId",
    "vpc_peering_connection_id": "VpcPeeringConnectionId",
    "egress_only_gateway_id": "EgressOnlyInternetGatewayId",
    "local_gateway_id": "LocalGatewayId",
    "carrier_gateway_id": "CarrierGatewayId",
    "core_network_arn": "CoreNetworkArn",
    "vpc_endpoint_id": "VpcEndpointId",
    "network_interface_id": "NetworkInterfaceId",  # also what an instance route reports
}


def owned_route_tables(ctx: AwsContext) -> list[dict[str, Any]]:
    """Every route table tagged for this cluster: one paginated describe per discovery pass."""

    return owned_items(ctx, "describe_route_tables", "RouteTables")


def describe_route_tables(ctx: AwsContext, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pages = ctx.client("ec2").get_paginator("describe_route_tables").paginate(Filters=filters)
    return [rt for page in pages for rt in page["RouteTables"]]


def _route(route: Mapping[str, Any]) -> dict[str, str] | None:
    """A route as byoc writes it, or None for ones byoc does not manage (the local route,
    propagated routes, IPv6 and prefix-list destinations)."""
    cidr = route.get("DestinationCidrBlock")
    if route.get("Origin") != "CreateRoute" or not cidr or route.get("GatewayId") == "local":
        return None
    for prop, field in TARGETS.items():
        value = route.get(field)
        if value:
            if prop == "gateway_id" and str(value).startswith("vpce-"):
                prop = "vpc_endpoint_id"
            return {"cidr_block": cidr, prop: str(value)}
    return {"cidr_block": cidr}


def _target(route: Mapping[str, Any]) -> dict[str, str]:
    """The Create/ReplaceRoute target parameter of a byoc route."""
    return {field: route[prop] for prop, field in TARGETS.items() if prop in route}

#: the keys of the provider's route object (aws_route_table ``route``)
ROUTE_KEYS = ("carrier_gateway_id", "cidr_block", "core_network_arn", "destination_prefix_list_id",
              "egress_only_gateway_id", "gateway_id", "ipv6_cidr_block", "local_gateway_id",
              "nat_gateway_id", "network_interface_id", "transit_gateway_id", "vpc_endpoint_id",
              "vpc_peering_connection_id")


class RouteTable(ResourceType):
    kind = "aws_route_table"
    service = "ec2"
    seconds = (2.0, 2.0)
    force_new = frozenset({"vpc_id"})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Routes as the provider's route objects: every target key present (empty when unset)."""
        routes = values.get("route")
        if not isinstance(routes, list):
            return dict(values)
        return {**values, "route": [{**dict.fromkeys(ROUTE_KEYS, ""), **r} for r in routes]}

    # -- reading -----------------------------------------------------------------------------
    def _live(self, ctx: AwsContext, rt: Mapping[str, Any], address: str = "") -> Live:
        rt_id = rt["RouteTableId"]
        tags = {k: v for k, v in tags_dict(rt.get("Tags")).items() if not k.startswith("aws:")}
        routes = []
        blackholes = []
        for raw in rt.get("Routes") or ():
            route = _route(raw)
            if route is None:
                continue
            routes.append(route)
            if raw.get("State") == "blackhole":
                blackholes.append(route["cidr_block"])
        routes.sort(key=lambda r: (r["cidr_block"], canonical_json(r)))
        props = {"vpc_id": rt.get("VpcId", ""), "route": routes, "tags": tags}
        owner = rt.get("OwnerId", "")
        arn = ec2_arn(ctx, owner, f"route-table/{rt_id}")
        attrs = {"id": rt_id, "arn": arn, "blackhole_routes": sorted(blackholes)}
        return Live(tags.get(ADDRESS_TAG) or address, self.kind, rt_id, props, attrs)

    def _owned(self, ctx: AwsContext, tables: list[dict[str, Any]]) -> list[Live]:
        return [self._live(ctx, rt) for rt in tables if is_owned(ctx, tags_dict(rt.get("Tags")))]

    def discover(self, ctx: AwsContext) -> list[Live]:
        return [with_address(live) for live in self._owned(ctx, owned_route_tables(ctx))]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look (not the discovery memo) for the table tagged with ``address``."""
        filters = owned_filter(ctx)  # no tag:byoc:address filter: moto reads its [ ] as a glob
        found = self._owned(ctx, describe_route_tables(ctx, filters))
        return next((live for live in found if live.address == address), None)

    def _get(self, ctx: AwsContext, rt_id: str) -> dict[str, Any] | None:
        return get_one(ctx, "describe_route_tables", "RouteTables", "RouteTableIds", rt_id)

    def _read(self, ctx: AwsContext, rt_id: str, address: str) -> Live:
        rt = get_when_visible(ctx, "describe_route_tables", "RouteTables", "RouteTableIds", rt_id)
        return self._live(ctx, rt, address)

    # -- writing -----------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        rt_id = ec2.create_route_table(
            VpcId=props["vpc_id"],
            TagSpecifications=tag_specs("route-table", props["tags"]),
            ClientToken=client_token(ctx, address, props),
        )["RouteTable"]["RouteTableId"]
        current = self._read(ctx, rt_id, address)  # waits until the new table is visible
        self._sync_routes(ctx, rt_id, current.props["route"], props["route"])
        return self._read(ctx, rt_id, address)

    def update(
        self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]
    ) -> Live:
        if "route" in changed:
            self._sync_routes(ctx, live.id, live.props["route"], props["route"])
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
        return self._read(ctx, live.id, live.address)

    def _sync_routes(
        self,
        ctx: AwsContext,
        rt_id: str,
        current: list[Mapping[str, Any]],
        desired: list[Mapping[str, Any]],
    ) -> None:
        """Diff by destination CIDR: CreateRoute, ReplaceRoute (target changed), DeleteRoute."""
        ec2 = ctx.client("ec2")
        have = {r["cidr_block"]: dict(r) for r in current}
        want = {r["cidr_block"]: dict(r) for r in desired}
        for cidr, route in want.items():
            if cidr not in have:
                self._put_route(ctx, rt_id, route)
            elif have[cidr] != route:
                ec2.replace_route(RouteTableId=rt_id, DestinationCidrBlock=cidr, **_target(route))
        for cidr in have.keys() - want.keys():
            try:
                ec2.delete_route(RouteTableId=rt_id, DestinationCidrBlock=cidr)
            except ClientError as exc:
                if not is_not_found(exc):
                    raise

    def _put_route(self, ctx: AwsContext, rt_id: str, route: Mapping[str, Any]) -> None:
        ec2 = ctx.client("ec2")
        params = {
            "RouteTableId": rt_id,
            "DestinationCidrBlock": route["cidr_block"],
            **_target(route),
        }
        # a table created a moment ago may not be visible to CreateRoute yet; after a 5xx the
        # route may be there: its "already exists" answer to the next attempt says so
        made = ctx.mutate(
            lambda: ctx.retry(
                lambda: ec2.create_route(**params),
                codes={"InvalidRouteTableID.NotFound"},
                timeout=min(ctx.retry_timeout, 60.0),
            ),
            already={"RouteAlreadyExists"},
        )
        if made is None:  # there already (this run's lost answer, or an earlier, interrupted run)
            ec2.replace_route(**params)  # with the target asked for

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        # DependencyViolation while its subnet associations are still being removed
        delete_then_wait(ctx, live, lambda: ec2.delete_route_table(RouteTableId=live.id),
                         lambda: self._get(ctx, live.id) is not None, timeout=300)


KIND = RouteTable()
