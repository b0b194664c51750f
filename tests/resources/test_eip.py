"""aws_eip against moto: create = discover, ownership, tags in place, release with retries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.eip import KIND

ADDR = 'aws_eip.nat["us-west-2a"]'


def props(**over: Any) -> dict[str, Any]:
    tags = {"Name": "test-nat-a", "byoc:cluster": "test", "byoc:address": ADDR}
    return {"domain": "vpc", "tags": tags, **over}


def fail_first(ctx: AwsContext, op: str, codes: list[str]) -> list[int]:
    """Fail the first len(codes) calls of ``op`` with these AWS error codes, in order."""
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= len(codes):
            raise ClientError({"Error": {"Code": codes[len(calls) - 1], "Message": "injected"}}, op)

    ctx.client("ec2").meta.events.register_first(f"before-call.ec2.{op}", hook)
    return calls


def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.address == ADDR and live.id.startswith("eipalloc-")
    assert live.props == props()
    assert live.attr("allocation_id") == live.id and live.attr("public_ip")
    assert KIND.discover(ctx) == [live]


def test_discovery_is_per_cluster(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    ctx.client("ec2").allocate_address(Domain="vpc")  # untagged: not ours
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.discover(ctx) == [live]


def test_retag_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    new = props(tags={"byoc:cluster": "test", "byoc:address": ADDR, "Name": "renamed"})
    updated = KIND.update(ctx, live, new, {"tags"})
    assert updated.id == live.id and updated.props == new
    assert KIND.discover(ctx) == [updated]


def test_domain_change_replaces() -> None:
    assert KIND.force_new == frozenset({"domain"})


def test_release_then_release_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # InvalidAllocationID.NotFound: already gone


def test_release_retries_while_the_nat_gateway_lets_go(ctx: AwsContext) -> None:
    # Real AWS answers these for a while after the NAT gateway holding the address is deleted.
    live = KIND.create(ctx, ADDR, props())
    codes = ["AuthFailure", "InvalidIPAddress.InUse", "InvalidNetworkInterfaceID.NotFound", "AuthFailure"]
    calls = fail_first(ctx, "ReleaseAddress", codes)
    KIND.delete(ctx, live)
    assert len(calls) == 5 and KIND.discover(ctx) == []


def test_release_gives_up_after_retry_timeout_and_not_found_eni_is_not_gone(
    ctx: AwsContext,
) -> None:
    live = KIND.create(ctx, ADDR, props())
    ctx.retry_timeout = 0.0
    fail_first(ctx, "ReleaseAddress", ["InvalidNetworkInterfaceID.NotFound"])
    with pytest.raises(ClientError, match=r"InvalidNetworkInterfaceID\.NotFound"):
        KIND.delete(ctx, live)
    assert KIND.discover(ctx) == [live]


def test_release_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "ReleaseAddress", ["UnauthorizedOperation"] * 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
