"""aws_internet_gateway against moto: create = discover, moving VPCs in place, detach+delete."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.internet_gateway import KIND

ADDR = "aws_internet_gateway.main"


@pytest.fixture
def vpc_id(ctx: AwsContext) -> str:
    return str(ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def props(vpc_id: str | None, **over: Any) -> dict[str, Any]:
    tags = {"Name": "test-igw", "byoc:cluster": "test", "byoc:address": ADDR}
    return {"vpc_id": vpc_id, "tags": tags, **over}


def attached_to(ctx: AwsContext, igw_id: str) -> list[str]:
    (igw,) = ctx.client("ec2").describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"]
    return [a["VpcId"] for a in igw["Attachments"]]


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    ctx.client("ec2").meta.events.register_first(f"before-call.ec2.{op}", hook)
    return calls


def test_create_equals_discover(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    assert live.address == ADDR and live.id.startswith("igw-")
    assert live.props == props(vpc_id)
    assert live.attr("arn") == f"arn:aws:ec2:us-west-2:123456789012:internet-gateway/{live.id}"
    assert KIND.discover(ctx) == [live]
    assert attached_to(ctx, live.id) == [vpc_id]


def test_discovery_is_per_cluster(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    ctx.client("ec2").create_internet_gateway()  # untagged: not ours
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.discover(ctx) == [live]


def test_detached_gateway_discovers_with_no_vpc(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(None))
    assert live.props["vpc_id"] is None and attached_to(ctx, live.id) == []
    assert KIND.discover(ctx) == [live]
    attached = KIND.update(ctx, live, props(vpc_id), {"vpc_id"})
    assert KIND.discover(ctx) == [attached] and attached.props["vpc_id"] == vpc_id


def test_move_to_another_vpc_and_retag_in_place(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    vpc2 = ctx.client("ec2").create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    new = props(vpc2, tags={"byoc:cluster": "test", "byoc:address": ADDR, "x": "y"})
    updated = KIND.update(ctx, live, new, {"vpc_id", "tags"})
    assert updated.id == live.id and updated.props == new
    assert KIND.discover(ctx) == [updated]
    assert attached_to(ctx, live.id) == [vpc2]


def test_nothing_forces_replacement() -> None:
    assert KIND.force_new == frozenset()


def test_delete_detaches_then_deletes_and_again_is_a_no_op(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)
    ctx.client("ec2").delete_vpc(VpcId=vpc_id)  # nothing left attached to the VPC


def test_delete_when_already_detached(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    ctx.client("ec2").detach_internet_gateway(InternetGatewayId=live.id, VpcId=vpc_id)
    KIND.delete(ctx, live)  # the stale vpc_id in live does not matter
    assert KIND.discover(ctx) == []


def test_detach_retries_dependency_violation(ctx: AwsContext, vpc_id: str) -> None:
    # Real AWS refuses while the VPC still has mapped public addresses (a NAT's EIP).
    live = KIND.create(ctx, ADDR, props(vpc_id))
    calls = fail_first(ctx, "DetachInternetGateway", "DependencyViolation", 3)
    KIND.delete(ctx, live)
    assert len(calls) == 4 and KIND.discover(ctx) == []


def test_move_when_already_detached_outside(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    ctx.client("ec2").detach_internet_gateway(InternetGatewayId=live.id, VpcId=vpc_id)
    vpc2 = ctx.client("ec2").create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    updated = KIND.update(ctx, live, props(vpc2), {"vpc_id"})  # Gateway.NotAttached: fine
    assert KIND.discover(ctx) == [updated] and attached_to(ctx, live.id) == [vpc2]


def test_detach_raises_other_errors_at_once(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    calls = fail_first(ctx, "DetachInternetGateway", "UnauthorizedOperation", 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
