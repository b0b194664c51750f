"""aws_nat_gateway against moto, plus what moto hides (pending, deleting, failed) by injection."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources._ec2 import client_token
from byoc.resources.nat_gateway import KIND

ADDR = 'aws_nat_gateway.main["us-west-2a"]'


@pytest.fixture
def net(ctx: AwsContext) -> dict[str, str]:
    """A VPC, a public subnet and an EIP, made directly in moto."""
    ec2 = ctx.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/20", AvailabilityZone="us-west-2a")
    return {
        "vpc_id": vpc_id,
        "subnet_id": subnet["Subnet"]["SubnetId"],
        "allocation_id": ec2.allocate_address(Domain="vpc")["AllocationId"],
    }


def props(net: dict[str, str], **over: Any) -> dict[str, Any]:
    base = {
        "allocation_id": net["allocation_id"],
        "subnet_id": net["subnet_id"],
        "connectivity_type": "public",
        "tags": {"Name": "test-nat-a", "byoc:cluster": "test", "byoc:address": ADDR},
    }
    return {**base, **over}


def on(ctx: AwsContext, event: str, hook: Any) -> None:
    ctx.client("ec2").meta.events.register_first(event, hook)


def report_state(ctx: AwsContext, states: list[str], **extra: str) -> list[str]:
    """DescribeNatGateways reports ``states`` on its next len(states) calls; returns what each
    call reported (moto has every NAT gateway available or deleted at once)."""
    seen: list[str] = []

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        for nat in parsed.get("NatGateways", []):
            if len(seen) < len(states):
                nat.update(State=states[len(seen)], **extra)
            seen.append(nat["State"])

    on(ctx, "after-call.ec2.DescribeNatGateways", hook)
    return seen


def test_create_equals_discover(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    assert live.address == ADDR and live.id.startswith("nat-")
    assert live.props == props(net)
    assert live.attr("public_ip") and live.attr("network_interface_id").startswith("eni-")
    assert KIND.discover(ctx) == [live]


def test_private_gateway_has_no_allocation(ctx: AwsContext, net: dict[str, str]) -> None:
    want = props(net, allocation_id=None, connectivity_type="private")
    live = KIND.create(ctx, ADDR, want)
    assert live.props == want and live.attr("public_ip") is None
    assert KIND.discover(ctx) == [live]


def test_discovery_filters_tags_client_side(ctx: AwsContext, net: dict[str, str]) -> None:
    # moto ignores the tag filter on DescribeNatGateways and returns every gateway.
    live = KIND.create(ctx, ADDR, props(net))
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    eip2 = ctx.client("ec2").allocate_address(Domain="vpc")["AllocationId"]
    theirs = props(net, allocation_id=eip2, tags={"byoc:cluster": "other", "byoc:address": ADDR})
    their_live = KIND.create(other, ADDR, theirs)
    assert KIND.discover(ctx) == [live]
    assert KIND.discover(other) == [their_live]


def test_retag_in_place(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    new = props(net, tags={"byoc:cluster": "test", "byoc:address": ADDR, "az": "a"})
    updated = KIND.update(ctx, live, new, {"tags"})
    assert updated.id == live.id and updated.props == new
    assert KIND.discover(ctx) == [updated]


def test_everything_else_replaces() -> None:
    assert KIND.force_new == frozenset({"allocation_id", "subnet_id", "connectivity_type"})


def test_client_token_is_deterministic(ctx: AwsContext, net: dict[str, str]) -> None:
    sent: list[str] = []
    on(
        ctx,
        "before-parameter-build.ec2.CreateNatGateway",
        lambda params, **kw: sent.append(params["ClientToken"]),
    )
    KIND.create(ctx, ADDR, props(net))
    assert sent == [client_token(ctx, ADDR, props(net))] and len(sent[0]) <= 64
    assert client_token(ctx, ADDR, props(net)) == sent[0]
    assert client_token(ctx, ADDR, props(net, connectivity_type="private")) != sent[0]
    assert client_token(ctx, "aws_nat_gateway.other", props(net)) != sent[0]


def test_create_reissues_when_the_token_names_a_dead_gateway(ctx: AwsContext, net: dict[str, str]) -> None:
    # On AWS a reused ClientToken hands back the earlier gateway even once it is deleted.
    want = props(net, allocation_id=None, connectivity_type="private")
    sent: list[str] = []
    on(
        ctx,
        "before-parameter-build.ec2.CreateNatGateway",
        lambda params, **kw: sent.append(params["ClientToken"]),
    )
    side = boto3.client("ec2", region_name="us-west-2")

    def stale(parsed: dict[str, Any], **kwargs: Any) -> None:
        if len(sent) == 1:
            side.delete_nat_gateway(NatGatewayId=parsed["NatGateway"]["NatGatewayId"])
            parsed["NatGateway"]["State"] = "deleted"

    on(ctx, "after-call.ec2.CreateNatGateway", stale)
    live = KIND.create(ctx, ADDR, want)
    assert len(sent) == 2 and sent[0] != sent[1]
    assert KIND.discover(ctx) == [live]


def test_create_waits_through_pending(ctx: AwsContext, net: dict[str, str]) -> None:
    seen = report_state(ctx, ["pending"] * 4)
    live = KIND.create(ctx, ADDR, props(net))
    assert seen == ["pending"] * 4 + ["available"]
    assert KIND.discover(ctx) == [live]


def test_create_failed_raises_and_leaves_nothing(ctx: AwsContext, net: dict[str, str]) -> None:
    failure = {
        "FailureCode": "InsufficientFreeAddressesInSubnet",
        "FailureMessage": "Subnet has insufficient free addresses to create this NAT gateway.",
    }
    seen = report_state(ctx, ["pending", "failed"], **failure)
    with pytest.raises(CloudError) as err:
        KIND.create(ctx, ADDR, props(net))
    e = err.value
    assert e.code == "InsufficientFreeAddressesInSubnet" and e.address == ADDR
    assert e.aws_id is not None and e.aws_id.startswith("nat-")
    assert "insufficient free addresses" in str(e)
    assert seen[:2] == ["pending", "failed"] and seen[-1] == "deleted"
    assert KIND.discover(ctx) == []
    nats = ctx.client("ec2").describe_nat_gateways(NatGatewayIds=[e.aws_id])["NatGateways"]
    assert [n["State"] for n in nats] == ["deleted"]


def test_delete_waits_until_deleted(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    order: list[str] = []
    on(ctx, "before-call.ec2.DeleteNatGateway", lambda **kw: order.append("delete"))
    seen = report_state(ctx, ["deleting"] * 3)
    on(ctx, "after-call.ec2.DescribeNatGateways", lambda **kw: order.append("describe"))
    KIND.delete(ctx, live)
    assert seen == ["deleting"] * 3 + ["deleted"]  # 4 polls, returned on the first "deleted"
    assert order == ["delete"] + ["describe"] * 4
    assert KIND.discover(ctx) == []


def test_delete_then_delete_again(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_delete_of_unknown_gateway_is_a_no_op(ctx: AwsContext, net: dict[str, str]) -> None:
    # moto crashes on DeleteNatGateway of an unknown id; AWS answers NatGatewayNotFound.
    live = KIND.create(ctx, ADDR, props(net))

    def not_found(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "NatGatewayNotFound", "Message": "gone"}}, "DeleteNatGateway")

    on(ctx, "before-call.ec2.DeleteNatGateway", not_found)
    KIND.delete(ctx, type(live)(ADDR, KIND.kind, "nat-0123456789abcdef0", live.props, {}))
    assert KIND.discover(ctx) == [live]


def test_delete_raises_other_errors_at_once(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))

    def deny(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DeleteNatGateway")

    on(ctx, "before-call.ec2.DeleteNatGateway", deny)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert KIND.discover(ctx) == [live]
