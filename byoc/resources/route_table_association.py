"""aws_route_table_association: the link of one subnet to one route table (not taggable).

Found in the memoised DescribeRouteTables of owned tables; its address is the subnet's own
(``aws_subnet.public["az"]`` -> ``aws_route_table_association.public["az"]``), read from the
subnet tags of one memoised DescribeSubnets (memo key ``describe_subnets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import EVENTUAL_CODES, error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, is_owned, owned_filter, tags_dict
from byoc.errors import CloudError
from byoc.model import Live, make_address, parse_address
from byoc.resources._ec2 import describe_owned, owned_items
from byoc.resources.base import ResourceType
from byoc.resources.route_table import describe_route_tables, owned_route_tables

LIVE_STATES = ("associated", "associating")


def owned_subnets(ctx: AwsContext) -> list[dict[str, Any]]:
    """Every subnet tagged for this cluster (the same memoised describe as aws_subnet's discovery)."""
    return owned_items(ctx, "describe_subnets", "Subnets")


def _state(assoc: Mapping[str, Any]) -> str:
    return str((assoc.get("AssociationState") or {}).get("State", "associated"))


class RouteTableAssociation(ResourceType):
    kind = "aws_route_table_association"
    service = "ec2"
    force_new = frozenset({"subnet_id"})
    #: an association blocks deleting its route table
    pins = frozenset({"route_table_id"})

    def address_for(self, subnet_address: str) -> str | None:
        """The association's address by convention: the subnet's name and key."""
        try:
            kind, name, key = parse_address(subnet_address)
        except ValueError:
            return None
        return make_address(self.kind, name, key) if kind == "aws_subnet" else None

    def _live(self, address: str, assoc_id: str, subnet_id: str, rt_id: str) -> Live:
        props = {"subnet_id": subnet_id, "route_table_id": rt_id}
        return Live(address, self.kind, assoc_id, props, {"id": assoc_id})

    def _found(
        self, ctx: AwsContext, tables: list[dict[str, Any]], subnets: list[dict[str, Any]]
    ) -> list[Live]:
        subnet_address: dict[str, str] = {}
        for subnet in subnets:
            tags = tags_dict(subnet.get("Tags"))
            address = self.address_for(tags.get(ADDRESS_TAG, ""))
            if is_owned(ctx, tags) and address:
                subnet_address[subnet["SubnetId"]] = address
        out = []
        for rt in tables:
            if not is_owned(ctx, tags_dict(rt.get("Tags"))):
                continue
            for assoc in rt.get("Associations") or ():
                subnet_id = assoc.get("SubnetId")
                if assoc.get("Main") or subnet_id not in subnet_address:
                    continue
                if _state(assoc) not in LIVE_STATES:
                    continue
                out.append(
                    self._live(
                        subnet_address[subnet_id],
                        assoc["RouteTableAssociationId"],
                        subnet_id,
                        rt["RouteTableId"],
                    )
                )
        return out

    def discover(self, ctx: AwsContext) -> list[Live]:
        return self._found(ctx, owned_route_tables(ctx), owned_subnets(ctx))

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look (not the discovery memo)."""
        tables = describe_route_tables(ctx, owned_filter(ctx))
        found = self._found(ctx, tables, describe_owned(ctx, "describe_subnets", "Subnets"))
        return next((live for live in found if live.address == address), None)

    # -- writing -----------------------------------------------------------------------------
    def _current(self, ctx: AwsContext, subnet_id: str) -> tuple[str, str] | None:
        """(association id, route table id) of the subnet's explicit association, if any."""
        filters = [{"Name": "association.subnet-id", "Values": [subnet_id]}]
        for rt in describe_route_tables(ctx, filters):
            for assoc in rt.get("Associations") or ():
                if (
                    assoc.get("SubnetId") == subnet_id
                    and not assoc.get("Main")
                    and _state(assoc) in LIVE_STATES
                ):
                    return assoc["RouteTableAssociationId"], rt["RouteTableId"]
        return None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        subnet_id, rt_id = props["subnet_id"], props["route_table_id"]
        current = self._current(ctx, subnet_id)  # look before create
        answered: str | None = None
        if current is None:
            try:
                # subnet and table may have been created a moment ago
                resp = ctx.retry(
                    lambda: ec2.associate_route_table(SubnetId=subnet_id, RouteTableId=rt_id),
                    codes=EVENTUAL_CODES
                    | {"InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound"},
                    timeout=min(ctx.retry_timeout, 60.0),
                )
                assoc_id: str = resp["AssociationId"]
                answered = (resp.get("AssociationState") or {}).get("State")
            except ClientError as exc:
                if error_code(exc) != "Resource.AlreadyAssociated":
                    raise
                current = self._current(ctx, subnet_id)
                if current is None:
                    raise
        if current is not None:
            assoc_id, current_rt = current
            if current_rt != rt_id:
                assoc_id = self._replace(ctx, assoc_id, rt_id)
        if answered != "associated":  # AWS may answer "associating": wait it out
            self._wait(ctx, assoc_id, rt_id)
        return self._live(address, assoc_id, subnet_id, rt_id)

    def update(
        self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]
    ) -> Live:
        assoc_id = live.id
        if "route_table_id" in changed:
            assoc_id = self._replace(ctx, live.id, props["route_table_id"])
            self._wait(ctx, assoc_id, props["route_table_id"])
        return self._live(live.address, assoc_id, props["subnet_id"], props["route_table_id"])

    def _replace(self, ctx: AwsContext, assoc_id: str, rt_id: str) -> str:
        resp = ctx.client("ec2").replace_route_table_association(
            AssociationId=assoc_id, RouteTableId=rt_id
        )
        return str(resp["NewAssociationId"])

    def _state_in(self, ctx: AwsContext, assoc_id: str, rt_id: str) -> str | None:
        """The association's state as seen on its table; None when it is not there."""
        try:
            tables = ctx.client("ec2").describe_route_tables(RouteTableIds=[rt_id])["RouteTables"]
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        for rt in tables:
            for assoc in rt.get("Associations") or ():
                if assoc.get("RouteTableAssociationId") == assoc_id:
                    return _state(assoc)
        return None

    def _wait(self, ctx: AwsContext, assoc_id: str, rt_id: str) -> None:
        state = ctx.poll(
            lambda: self._state_in(ctx, assoc_id, rt_id),
            lambda s: s not in ("associating", None),
            timeout=300,
            what=f"route table association {assoc_id}",
        )
        if state != "associated":
            raise CloudError(f"route table association {assoc_id} is {state}", aws_id=assoc_id)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        try:
            ctx.retry(lambda: ec2.disassociate_route_table(AssociationId=live.id))
        except ClientError as exc:
            if is_not_found(exc):
                return
            raise
        ctx.poll(
            lambda: self._state_in(ctx, live.id, live.props["route_table_id"]),
            lambda s: s in (None, "disassociated"),
            timeout=300,
            what=f"route table association {live.id} to be removed",
        )


KIND = RouteTableAssociation()
