"""aws_route_table_association against moto: address by subnet convention, moves, shared describes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.route_table import KIND as ROUTE_TABLE
from byoc.resources.route_table_association import KIND

SUBNET = 'aws_subnet.public["us-west-2a"]'
ADDR = 'aws_route_table_association.public["us-west-2a"]'


def tagspec(kind: str, address: str, cluster: str = "test") -> list[dict[str, Any]]:
    tags = {"Name": address, "byoc:cluster": cluster, "byoc:address": address}
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


@pytest.fixture
def net(ctx: AwsContext) -> dict[str, str]:
    """VPC, an owned subnet, an unowned subnet and two owned route tables, via boto3 directly."""
    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    def subnet(cidr: str, spec: list[dict[str, Any]]) -> str:
        return str(
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=cidr, AvailabilityZone="us-west-2a", TagSpecifications=spec
            )["Subnet"]["SubnetId"]
        )

    def table(address: str) -> str:
        return str(
            ec2.create_route_table(VpcId=vpc, TagSpecifications=tagspec("route-table", address))[
                "RouteTable"
            ]["RouteTableId"]
        )

    return {
        "vpc": vpc,
        "subnet": subnet("10.0.0.0/24", tagspec("subnet", SUBNET)),
        "foreign_subnet": subnet("10.0.1.0/24", tagspec("subnet", SUBNET, cluster="other")),
        "rt1": table("aws_route_table.public"),
        "rt2": table('aws_route_table.private["us-west-2a"]'),
    }


def props(net: dict[str, str], table: str = "rt1") -> dict[str, Any]:
    return {"subnet_id": net["subnet"], "route_table_id": net[table]}


def associations(ctx: AwsContext, subnet_id: str) -> list[tuple[str, str]]:
    tables = ctx.client("ec2").describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}]
    )["RouteTables"]
    return [
        (a["RouteTableAssociationId"], t["RouteTableId"])
        for t in tables
        for a in t["Associations"]
        if a.get("SubnetId") == subnet_id
    ]


def count(ctx: AwsContext, op: str) -> list[int]:
    calls: list[int] = []
    ctx.client("ec2").meta.events.register_first(f"before-call.ec2.{op}", lambda **kw: calls.append(1))
    return calls


def test_create_equals_discover(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    assert live.id.startswith("rtbassoc-") and live.address == ADDR
    assert live.props == props(net)
    assert KIND.discover(ctx) == [live]
    assert KIND.find(ctx, ADDR) == live
    assert associations(ctx, net["subnet"]) == [(live.id, net["rt1"])]


def test_address_follows_subnet_and_foreign_subnets_are_ignored(ctx: AwsContext, net: dict[str, str]) -> None:
    assert KIND.address_for('aws_subnet.private["us-west-2b"]') == (
        'aws_route_table_association.private["us-west-2b"]'
    )
    assert KIND.address_for("aws_vpc.main") is None
    ctx.client("ec2").associate_route_table(SubnetId=net["foreign_subnet"], RouteTableId=net["rt1"])
    assert KIND.discover(ctx) == []  # the only association is of a subnet that is not ours


def test_not_discovered_for_another_cluster(ctx: AwsContext, net: dict[str, str]) -> None:
    KIND.create(ctx, ADDR, props(net))
    other = AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)
    assert KIND.discover(other) == []


def test_one_describe_each_shared_with_route_tables(ctx: AwsContext, net: dict[str, str]) -> None:
    KIND.create(ctx, ADDR, props(net))
    tables, subnets = count(ctx, "DescribeRouteTables"), count(ctx, "DescribeSubnets")
    with ctx.discovery_pass():
        assert len(ROUTE_TABLE.discover(ctx)) == 2
        assert len(KIND.discover(ctx)) == 1
        assert (len(tables), len(subnets)) == (1, 1)
        nothing: list[dict[str, Any]] = []
        memo_tables = ctx.memo("ec2", "describe_route_tables", lambda: nothing)
        memo_subnets = ctx.memo("ec2", "describe_subnets", lambda: nothing)
        assert {t["RouteTableId"] for t in memo_tables} == {net["rt1"], net["rt2"]}
        assert {s["SubnetId"] for s in memo_subnets} == {net["subnet"]}
    # outside a discovery pass every read is fresh
    assert len(KIND.discover(ctx)) == 1
    assert (len(tables), len(subnets)) == (2, 2)


def test_update_moves_to_another_table(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    moved = KIND.update(ctx, live, props(net, "rt2"), {"route_table_id"})
    assert moved.id != live.id  # ReplaceRouteTableAssociation makes a new association id
    assert moved.props == props(net, "rt2") and moved.address == ADDR
    assert KIND.discover(ctx) == [moved]
    assert associations(ctx, net["subnet"]) == [(moved.id, net["rt2"])]


def test_force_new() -> None:
    assert KIND.force_new == {"subnet_id"}


def test_create_replaces_an_existing_association(ctx: AwsContext, net: dict[str, str]) -> None:
    old = ctx.client("ec2").associate_route_table(SubnetId=net["subnet"], RouteTableId=net["rt2"])
    live = KIND.create(ctx, ADDR, props(net))
    assert live.id != old["AssociationId"] and live.props == props(net)
    assert associations(ctx, net["subnet"]) == [(live.id, net["rt1"])]


def test_create_is_idempotent(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    calls = count(ctx, "AssociateRouteTable")
    assert KIND.create(ctx, ADDR, props(net)) == live
    assert calls == []


def test_create_waits_only_when_aws_answers_associating(ctx: AwsContext, net: dict[str, str]) -> None:
    """AWS answers AssociateRouteTable with the association's state: "associated" needs no
    wait; "associating" is waited out by reading the table."""
    ec2 = ctx.client("ec2")
    reads = count(ctx, "DescribeRouteTables")
    KIND.create(ctx, ADDR, props(net))
    assert len(reads) == 1  # the look before create, no wait
    KIND.delete(ctx, KIND.discover(ctx)[0])

    def associating(parsed: dict[str, Any], **kwargs: Any) -> None:
        parsed["AssociationState"] = {"State": "associating"}

    ec2.meta.events.register("after-call.ec2.AssociateRouteTable", associating)
    reads.clear()
    live = KIND.create(ctx, ADDR, props(net))
    assert len(reads) == 2 and associations(ctx, net["subnet"]) == [(live.id, net["rt1"])]


def test_create_after_already_associated_race(ctx: AwsContext, net: dict[str, str]) -> None:
    # moto never says Resource.AlreadyAssociated: another writer associates the subnet between
    # byoc's look and its AssociateRouteTable, and AWS refuses
    ec2 = ctx.client("ec2")
    someone_else = boto3.client("ec2", region_name=ctx.region)
    calls: list[int] = []

    def race(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            someone_else.associate_route_table(SubnetId=net["subnet"], RouteTableId=net["rt2"])
            raise ClientError(
                {"Error": {"Code": "Resource.AlreadyAssociated", "Message": "injected"}},
                "AssociateRouteTable",
            )

    ec2.meta.events.register_first("before-call.ec2.AssociateRouteTable", race)
    live = KIND.create(ctx, ADDR, props(net))
    assert live.props == props(net) and len(calls) == 1
    assert associations(ctx, net["subnet"]) == [(live.id, net["rt1"])]


def test_delete_then_delete_again(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    KIND.delete(ctx, live)
    assert associations(ctx, net["subnet"]) == []
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_the_test_moto_walks_route_tables_while_another_thread_disassociates(ctx: AwsContext) -> None:
    """byoc.sandbox.route_tables_read_safely: moto's route tables and each table's associations
    answer snapshots, so a DescribeRouteTables or DisassociateRouteTable that walks them while
    another thread's DisassociateRouteTable or DeleteRouteTable changes them (AWS serves those at
    once: a destroy removes a table's associations side by side) cannot fail with "dictionary
    changed size during iteration"."""
    from moto.ec2.models import ec2_backends

    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    tables = [ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(2)]
    for i in range(3):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=tables[0], SubnetId=subnet)
    backend = ec2_backends["123456789012"]["us-west-2"]
    table = backend.route_tables[tables[0]]
    seen = []
    for association_id in table._associations:  # as another thread disassociates meanwhile
        seen.append(association_id)
        table._associations.pop(association_id)
    assert len(seen) == 3 and not table._associations
    walked = []
    for route_table in backend.route_tables.values():  # as another thread deletes a table
        walked.append(route_table.id)
        backend.route_tables.pop(tables[1], None)
    assert tables[1] in walked
