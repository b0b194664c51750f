"""aws_vpc against moto: create = discover, ownership, DNS flags in place, delete."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.vpc import KIND

ADDR = "aws_vpc.main"


def props(**over: Any) -> dict[str, Any]:
    base = {
        "cidr_block": "10.0.0.0/16",
        "enable_dns_support": True,
        "enable_dns_hostnames": True,
        "tags": {"Name": "test-vpc", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


def record(ctx: AwsContext, op: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    ctx.client("ec2").meta.events.register_first(
        f"before-parameter-build.ec2.{op}", lambda params, **kw: calls.append(dict(params))
    )
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    ctx.client("ec2").meta.events.register_first(f"before-call.ec2.{op}", hook)
    return calls


def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.address == ADDR and live.id.startswith("vpc-")
    assert live.props == props()
    assert KIND.discover(ctx) == [live]  # moto's default VPC is not ours
    assert live.attr("arn") == f"arn:aws:ec2:us-west-2:123456789012:vpc/{live.id}"
    assert set(live.attrs) == {"arn", "owner_id"}  # the default SG and main route table are not read
    assert live.attrs["owner_id"] == live.attrs["arn"].split(":")[4]


def test_create_sets_each_dns_flag_in_its_own_call(ctx: AwsContext) -> None:
    calls = record(ctx, "ModifyVpcAttribute")
    live = KIND.create(ctx, ADDR, props(enable_dns_hostnames=True))
    assert [set(c) - {"VpcId"} for c in calls] == [{"EnableDnsHostnames"}]  # support is on already
    live2 = KIND.create(
        ctx,
        "aws_vpc.b",
        props(
            enable_dns_support=False,
            enable_dns_hostnames=False,
            tags={"byoc:cluster": "test", "byoc:address": "aws_vpc.b"},
        ),
    )
    assert live2.props["enable_dns_support"] is False
    assert sorted(KIND.discover(ctx), key=lambda v: v.address) == [live2, live]


def test_discovery_is_per_cluster_and_without_an_address_unmanaged(ctx: AwsContext) -> None:
    KIND.create(ctx, ADDR, props())
    ec2 = ctx.client("ec2")
    stray = ec2.create_vpc(
        CidrBlock="10.9.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "byoc:cluster", "Value": "test"}]}],
    )["Vpc"]["VpcId"]
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert sorted(v.address for v in KIND.discover(ctx)) == sorted([ADDR, f'aws_vpc.unmanaged["{stray}"]'])


def test_update_dns_and_tags_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    tags = {k: v for k, v in props()["tags"].items() if k != "team"} | {"env": "prod"}
    new = props(enable_dns_hostnames=False, tags=tags)
    updated = KIND.update(ctx, live, new, {"enable_dns_hostnames", "tags"})
    assert updated.id == live.id and updated.props == new
    assert KIND.discover(ctx) == [updated]


def test_dns_support_goes_off_after_hostnames_and_on_before(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = record(ctx, "ModifyVpcAttribute")
    off = props(enable_dns_support=False, enable_dns_hostnames=False)
    live = KIND.update(ctx, live, off, {"enable_dns_support", "enable_dns_hostnames"})
    assert KIND.discover(ctx)[0].props == off
    KIND.update(ctx, live, props(), {"enable_dns_support", "enable_dns_hostnames"})
    order = [next(k for k in c if k != "VpcId") for c in calls]
    assert order == ["EnableDnsHostnames", "EnableDnsSupport", "EnableDnsSupport", "EnableDnsHostnames"]
    assert KIND.discover(ctx)[0].props == props()


def test_cidr_change_replaces() -> None:
    assert KIND.force_new == frozenset({"cidr_block"})


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # already gone: fine


def test_delete_retries_dependency_violation(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteVpc", "DependencyViolation", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteVpc", "UnauthorizedOperation", 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
