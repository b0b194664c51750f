"""aws_subnet against moto: create = discover, ownership, public-IP flag in place, delete."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.subnet import KIND

ADDR = 'aws_subnet.public["us-west-2a"]'


@pytest.fixture
def vpc_id(ctx: AwsContext) -> str:
    return str(ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def props(vpc_id: str, **over: Any) -> dict[str, Any]:
    base = {
        "vpc_id": vpc_id,
        "cidr_block": "10.0.0.0/20",
        "availability_zone": "us-west-2a",
        "map_public_ip_on_launch": False,
        "tags": {"Name": "test-public-a", "byoc:cluster": "test", "byoc:address": ADDR},
    }
    return {**base, **over}


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    ctx.client("ec2").meta.events.register_first(f"before-call.ec2.{op}", hook)
    return calls


@pytest.mark.parametrize("public", [False, True])
def test_create_equals_discover(ctx: AwsContext, vpc_id: str, public: bool) -> None:
    want = props(vpc_id, map_public_ip_on_launch=public)
    live = KIND.create(ctx, ADDR, want)
    assert live.address == ADDR and live.id.startswith("subnet-")
    assert live.props == want
    assert live.attr("arn") == f"arn:aws:ec2:us-west-2:123456789012:subnet/{live.id}"
    assert KIND.discover(ctx) == [live]


def test_discovery_is_per_cluster(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    mine = props(vpc_id, cidr_block="10.0.16.0/20")
    mine["tags"] = {"byoc:cluster": "other", "byoc:address": ADDR}
    theirs = KIND.create(other, ADDR, mine)
    assert KIND.discover(other) == [theirs]
    assert KIND.discover(ctx) == [live]


def test_update_public_ip_and_tags_in_place(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    tags = {"byoc:cluster": "test", "byoc:address": ADDR, "tier": "public"}  # Name removed
    new = props(vpc_id, map_public_ip_on_launch=True, tags=tags)
    updated = KIND.update(ctx, live, new, {"map_public_ip_on_launch", "tags"})
    assert updated.id == live.id and updated.props == new
    assert KIND.discover(ctx) == [updated]


def test_vpc_cidr_and_az_changes_replace() -> None:
    assert KIND.force_new == frozenset({"vpc_id", "cidr_block", "availability_zone"})


def test_delete_then_delete_again(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_delete_retries_dependency_violation(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    calls = fail_first(ctx, "DeleteSubnet", "DependencyViolation", 3)
    KIND.delete(ctx, live)
    assert len(calls) == 4 and KIND.discover(ctx) == []


def test_delete_gives_up_after_retry_timeout(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    ctx.retry_timeout = 0.0
    fail_first(ctx, "DeleteSubnet", "DependencyViolation", 100)
    with pytest.raises(ClientError, match="DependencyViolation"):
        KIND.delete(ctx, live)
    assert KIND.discover(ctx) == [live]


def test_delete_raises_other_errors_at_once(ctx: AwsContext, vpc_id: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc_id))
    calls = fail_first(ctx, "DeleteSubnet", "UnauthorizedOperation", 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
