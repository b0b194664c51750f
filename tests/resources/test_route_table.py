"""aws_route_table against moto: inline routes round-trip, route diffs, blackholes, delete retries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.route_table import KIND, _route

PUBLIC = "aws_route_table.public"
PRIVATE = 'aws_route_table.private["us-west-2a"]'


def tags(address: str) -> dict[str, str]:
    return {"Name": "test-rt", "byoc:cluster": "test", "byoc:address": address, "team": "a"}


def fail_with(ctx: AwsContext, op: str, codes: list[str]) -> list[int]:
    """Make the n-th call of ``op`` raise ``codes[n]`` (then pass); returns the call counter."""
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= len(codes):
            code = codes[len(calls) - 1]
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    ctx.client("ec2").meta.events.register_first(f"before-call.ec2.{op}", hook)
    return calls


@pytest.fixture
def net(ctx: AwsContext) -> dict[str, str]:
    """A VPC with an attached internet gateway and a NAT gateway, made with boto3 directly."""
    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-west-2a")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet["Subnet"]["SubnetId"], AllocationId=eip)
    return {"vpc": vpc, "igw": igw, "nat": nat["NatGateway"]["NatGatewayId"]}


def public(net: dict[str, str], **over: Any) -> dict[str, Any]:
    base = {
        "vpc_id": net["vpc"],
        "route": [{"cidr_block": "0.0.0.0/0", "gateway_id": net["igw"]}],
        "tags": tags(PUBLIC),
    }
    return {**base, **over}


def test_create_equals_discover(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net))
    private = KIND.create(ctx, PRIVATE, {"vpc_id": net["vpc"], "route": [], "tags": tags(PRIVATE)})
    assert live.id.startswith("rtb-") and live.address == PUBLIC
    assert live.props == public(net)  # the local route is not part of it
    assert private.props == {"vpc_id": net["vpc"], "route": [], "tags": tags(PRIVATE)}
    assert live.attr("arn") == f"arn:aws:ec2:us-west-2:123456789012:route-table/{live.id}"
    assert live.attr("blackhole_routes") == []
    assert sorted(KIND.discover(ctx), key=lambda x: x.address) == [private, live]
    assert KIND.find(ctx, PUBLIC) == live


def test_not_discovered_for_another_cluster(ctx: AwsContext, net: dict[str, str]) -> None:
    KIND.create(ctx, PUBLIC, public(net))
    other = AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.find(other, PUBLIC) is None


def test_routes_sorted_local_and_propagated_dropped() -> None:
    routes = [
        {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable"},
        {
            "DestinationCidrBlock": "172.16.0.0/12",
            "GatewayId": "vgw-1",
            "Origin": "EnableVgwRoutePropagation",
        },
        {"DestinationIpv6CidrBlock": "::/0", "GatewayId": "igw-1", "Origin": "CreateRoute"},
        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "Origin": "CreateRoute"},
    ]
    assert [r for r in map(_route, routes) if r] == [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": "nat-1"}]


def test_update_routes_and_tags_in_place(ctx: AwsContext, net: dict[str, str]) -> None:
    start = public(
        net,
        route=[
            {"cidr_block": "0.0.0.0/0", "gateway_id": net["igw"]},
            {"cidr_block": "192.168.0.0/16", "gateway_id": net["igw"]},
        ],
    )
    live = KIND.create(ctx, PUBLIC, start)
    assert live.props == start
    want = public(
        net,
        route=[  # target igw -> nat (ReplaceRoute), 192.168/16 removed, 172.16/12 added
            {"cidr_block": "0.0.0.0/0", "nat_gateway_id": net["nat"]},
            {"cidr_block": "172.16.0.0/12", "gateway_id": net["igw"]},
        ],
        tags={**tags(PUBLIC), "team": "b", "env": "prod"},
    )
    updated = KIND.update(ctx, live, want, {"route", "tags"})
    assert updated.id == live.id and updated.props == want
    assert KIND.discover(ctx) == [updated]
    emptied = KIND.update(ctx, updated, {**want, "route": []}, {"route"})
    assert emptied.props["route"] == []


def test_route_left_by_an_interrupted_run_is_replaced(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net, route=[]))
    ctx.client("ec2").create_route(
        RouteTableId=live.id, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"]
    )
    want = public(net, route=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": net["nat"]}])
    # live still says "no routes": CreateRoute meets RouteAlreadyExists and replaces instead
    assert KIND.update(ctx, live, want, {"route"}).props == want


def test_force_new() -> None:
    assert KIND.force_new == {"vpc_id"}


def test_blackhole_route_is_reported_not_an_error(ctx: AwsContext, net: dict[str, str]) -> None:
    want = public(net, route=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": net["nat"]}])
    live = KIND.create(ctx, PUBLIC, want)
    ec2 = ctx.client("ec2")
    ec2.delete_nat_gateway(NatGatewayId=net["nat"])

    # moto keeps such a route "active"; real AWS marks it blackhole once the NAT is gone
    def blackhole(parsed: dict[str, Any], **kwargs: Any) -> None:
        for rt in parsed.get("RouteTables", []):
            for route in rt.get("Routes", []):
                if route.get("NatGatewayId") == net["nat"]:
                    route["State"] = "blackhole"

    ec2.meta.events.register_first("after-call.ec2.DescribeRouteTables", blackhole)
    (found,) = KIND.discover(ctx)
    assert found.props == want
    assert found.attr("blackhole_routes") == ["0.0.0.0/0"]
    assert found.id == live.id


def test_delete_then_delete_again(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_delete_retries_dependency_violation(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net))
    calls = fail_with(ctx, "DeleteRouteTable", ["DependencyViolation"] * 3)
    KIND.delete(ctx, live)
    assert len(calls) == 4
    assert KIND.discover(ctx) == []


def test_delete_waits_out_a_real_association(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net))
    ec2 = ctx.client("ec2")
    subnet = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    assoc = ec2.associate_route_table(RouteTableId=live.id, SubnetId=subnet)["AssociationId"]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the association goes away while byoc backs off
        if not slept:
            ec2.disassociate_route_table(AssociationId=assoc)
        slept.append(seconds)

    ctx.sleep = sleep
    KIND.delete(ctx, live)  # meets moto's own DependencyViolation first
    assert len(slept) == 1
    assert KIND.discover(ctx) == []


def test_delete_raises_non_retryable_error_at_once(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net))
    calls = fail_with(ctx, "DeleteRouteTable", ["UnauthorizedOperation"])
    with pytest.raises(ClientError) as err:
        KIND.delete(ctx, live)
    assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert len(calls) == 1
    assert KIND.find(ctx, PUBLIC) == live


def test_delete_gives_up_after_retry_timeout(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, PUBLIC, public(net))
    ctx.retry_timeout = 3.0
    calls = fail_with(ctx, "DeleteRouteTable", ["DependencyViolation"] * 1000)
    with pytest.raises(ClientError) as err:
        KIND.delete(ctx, live)
    assert err.value.response["Error"]["Code"] == "DependencyViolation"
    assert 2 <= len(calls) <= 3
