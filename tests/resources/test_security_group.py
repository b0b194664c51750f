"""aws_security_group against moto: atomic rules round-trip, default egress, updates, delete retries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources._sg_rules import diff_rules, from_permissions
from byoc.resources.security_group import KIND

ADDR = "aws_security_group.node"
ALL_OUT = {
    "protocol": "-1",
    "from_port": 0,
    "to_port": 0,
    "cidr_block": "0.0.0.0/0",
    "description": "all outbound",
}


def tcp(port: int, description: str = "", **source: Any) -> dict[str, Any]:
    return {"protocol": "tcp", "from_port": port, "to_port": port, **source, "description": description}


def sort(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from byoc.model import canonical_json

    return sorted(rules, key=canonical_json)


def props(vpc_id: str, **over: Any) -> dict[str, Any]:
    base = {
        "name": "test-node",
        "description": "byoc test: Proton nodes",
        "vpc_id": vpc_id,
        "ingress": [tcp(22, "ssh", cidr_block="10.0.0.0/8")],
        "egress": [ALL_OUT],
        "tags": {"Name": "test-node", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    """Make ``op`` raise ``code`` for its first ``times`` calls; returns the call counter."""
    return fail_with(ctx, op, [code] * times)


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
def vpc(ctx: AwsContext) -> str:
    return str(ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def raw(ctx: AwsContext, gid: str) -> dict[str, Any]:
    return dict(ctx.client("ec2").describe_security_groups(GroupIds=[gid])["SecurityGroups"][0])


def test_create_equals_discover_with_self_other_group_and_multi_cidr(ctx: AwsContext, vpc: str) -> None:
    ec2 = ctx.client("ec2")
    other = ec2.create_security_group(GroupName="lb", Description="lb", VpcId=vpc)["GroupId"]
    ingress = sort(
        [
            tcp(8123, "proton http", cidr_block="10.0.0.0/8"),
            tcp(8123, "", cidr_block="192.168.1.0/24"),  # same port: one IpPermission, two ranges
            tcp(8123, "v6", ipv6_cidr_block="2001:db8::/32"),
            tcp(8463, "from lb", security_group_id=other),
            {"protocol": "-1", "from_port": 0, "to_port": 0, "self": True, "description": "nodes"},
            {
                "protocol": "udp",
                "from_port": 53,
                "to_port": 53,
                "cidr_block": "10.0.0.0/8",
                "description": "",
            },
            {
                "protocol": "icmp",
                "from_port": -1,
                "to_port": -1,
                "cidr_block": "10.0.0.0/8",
                "description": "ping",
            },
        ]
    )
    want = props(vpc, ingress=ingress)
    live = KIND.create(ctx, ADDR, want)
    assert live.address == ADDR and live.id.startswith("sg-")
    assert live.props == want
    assert live.attr("arn").endswith(f":security-group/{live.id}")
    assert KIND.discover(ctx) == [live]
    assert KIND.find(ctx, ADDR) == live
    # AWS really holds grouped permissions: the 8123 rules share one IpPermission
    perms = [p for p in raw(ctx, live.id)["IpPermissions"] if p.get("FromPort") == 8123]
    assert len(perms) == 1 and len(perms[0]["IpRanges"]) == 2


def test_not_discovered_for_another_cluster(ctx: AwsContext, vpc: str) -> None:
    KIND.create(ctx, ADDR, props(vpc))
    other = AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.find(other, ADDR) is None


def test_default_egress_removed_when_not_desired(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc, egress=[]))
    assert live.props["egress"] == []
    assert raw(ctx, live.id)["IpPermissionsEgress"] == []


def test_default_egress_replaced_by_desired_egress(ctx: AwsContext, vpc: str) -> None:
    egress = [tcp(443, "https", cidr_block="0.0.0.0/0")]
    live = KIND.create(ctx, ADDR, props(vpc, egress=egress))
    assert live.props["egress"] == egress
    assert KIND.discover(ctx)[0].props["egress"] == egress


def test_numeric_protocols_and_portless_all_traffic_are_normalised() -> None:
    perms: list[dict[str, Any]] = [
        {"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "1.0.0.0/8"}]},
        {
            "IpProtocol": "17",
            "FromPort": 53,
            "ToPort": 53,
            "UserIdGroupPairs": [{"GroupId": "sg-me", "UserId": "1"}],
        },
        {
            "IpProtocol": "-1",
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "all"}],
            "PrefixListIds": [{"PrefixListId": "pl-1"}],
        },
    ]
    assert from_permissions(perms, "sg-me") == sort(
        [
            {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_block": "1.0.0.0/8", "description": ""},
            {"protocol": "udp", "from_port": 53, "to_port": 53, "self": True, "description": ""},
            {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_block": "0.0.0.0/0", "description": "all"},
        ]
    )


def test_description_changes_update_in_place_or_readd_when_cleared() -> None:
    cur = [tcp(22, "a", cidr_block="1.0.0.0/8"), tcp(80, "b", cidr_block="1.0.0.0/8")]
    want = [tcp(22, "new", cidr_block="1.0.0.0/8"), tcp(80, "", cidr_block="1.0.0.0/8")]
    d = diff_rules(cur, want)
    assert d.add == [] and d.redescribe == [want[0]]
    assert d.remove == [cur[1]] and d.readd == [want[1]]


def test_update_rules_and_tags_in_place(ctx: AwsContext, vpc: str) -> None:
    start = props(
        vpc,
        ingress=sort(
            [
                tcp(22, "ssh", cidr_block="10.0.0.0/8"),
                tcp(80, "web", cidr_block="10.0.0.0/8"),
                tcp(443, "tls", cidr_block="10.0.0.0/8"),
                tcp(9000, "gone", cidr_block="10.0.0.0/8"),
            ]
        ),
    )
    live = KIND.create(ctx, ADDR, start)
    want = props(
        vpc,
        ingress=sort(
            [
                tcp(22, "ssh", cidr_block="10.0.0.0/8"),
                tcp(80, "web server", cidr_block="10.0.0.0/8"),  # description changed
                tcp(443, "", cidr_block="10.0.0.0/8"),  # description cleared
                tcp(8123, "added", cidr_block="10.0.0.0/8"),  # added; 9000 removed
                {"protocol": "-1", "from_port": 0, "to_port": 0, "self": True, "description": ""},
            ]
        ),
        egress=[],
        tags={**start["tags"], "team": "b", "env": "prod"},
    )
    updated = KIND.update(ctx, live, want, {"ingress", "egress", "tags"})
    assert updated.id == live.id
    assert updated.props == want
    assert KIND.discover(ctx) == [updated]


def test_force_new() -> None:
    assert KIND.force_new == {"name", "description", "vpc_id"}


def test_duplicate_permission_is_tolerated(ctx: AwsContext, vpc: str) -> None:
    # real AWS refuses the whole batch when one rule exists; moto never does
    calls = fail_first(ctx, "AuthorizeSecurityGroupIngress", "InvalidPermission.Duplicate", 1)
    want = props(vpc, ingress=sort([tcp(22, cidr_block="10.0.0.0/8"), tcp(80, cidr_block="10.0.0.0/8")]))
    live = KIND.create(ctx, ADDR, want)
    assert len(calls) == 3  # the batch, then one call per rule
    assert live.props == want


def test_create_carries_on_with_own_half_made_group(ctx: AwsContext, vpc: str) -> None:
    want = props(vpc)
    tags = [{"Key": k, "Value": v} for k, v in want["tags"].items() if k != "team"]
    gid = ctx.client("ec2").create_security_group(
        GroupName=want["name"],
        Description=want["description"],
        VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
    )["GroupId"]
    live = KIND.create(ctx, ADDR, want)
    assert live.id == gid and live.props == want


def test_create_refuses_someone_elses_group_with_the_name(ctx: AwsContext, vpc: str) -> None:
    want = props(vpc)
    ctx.client("ec2").create_security_group(GroupName=want["name"], Description="x", VpcId=vpc)
    with pytest.raises(ClientError) as err:
        KIND.create(ctx, ADDR, want)
    assert err.value.response["Error"]["Code"] == "InvalidGroup.Duplicate"


def test_delete_then_delete_again(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    with pytest.raises(ClientError):
        raw(ctx, live.id)
    KIND.delete(ctx, live)  # already gone: success


def test_delete_retries_dependency_violation_and_in_use(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc))
    codes = ["DependencyViolation", "InvalidGroup.InUse", "InvalidGroup.InUse", "DependencyViolation"]
    calls = fail_with(ctx, "DeleteSecurityGroup", codes)
    KIND.delete(ctx, live)
    assert len(calls) == 5  # four refusals, then the delete that went through
    assert KIND.discover(ctx) == []


def test_delete_raises_non_retryable_error_at_once(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc))
    calls = fail_first(ctx, "DeleteSecurityGroup", "UnauthorizedOperation", 1)
    with pytest.raises(ClientError) as err:
        KIND.delete(ctx, live)
    assert err.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert len(calls) == 1
    assert raw(ctx, live.id)["GroupId"] == live.id  # still there


def test_delete_gives_up_after_retry_timeout(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, props(vpc))
    ctx.retry_timeout = 3.0  # backoff 1 s, 2 s, then 4 s would pass the deadline
    calls = fail_first(ctx, "DeleteSecurityGroup", "DependencyViolation", 1000)
    with pytest.raises(ClientError) as err:
        KIND.delete(ctx, live)
    assert err.value.response["Error"]["Code"] == "DependencyViolation"
    assert 2 <= len(calls) <= 3


def _counting(ctx: AwsContext) -> dict[str, int]:
    counts: dict[str, int] = {}

    def count(model: Any = None, **kwargs: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    ctx.client("ec2").meta.events.register("before-call.ec2", count)
    return counts


def test_a_new_group_gets_its_rules_without_being_read_first(ctx: AwsContext, vpc: str) -> None:
    """A new group holds only AWS's allow-all IPv4 egress: its rules are authorized and that rule
    revoked side by side, and the group is read once, at the end."""
    counts = _counting(ctx)
    want = props(vpc, egress=[tcp(443, "https out", cidr_block="0.0.0.0/0")])
    live = KIND.create(ctx, ADDR, want)
    assert counts.get("DescribeSecurityGroups") == 1
    assert counts.get("RevokeSecurityGroupEgress") == 1  # the default rule, gone
    assert live.props["ingress"] == want["ingress"] and live.props["egress"] == want["egress"]
    assert from_permissions(raw(ctx, live.id)["IpPermissionsEgress"], live.id) == want["egress"]


def test_a_new_group_unlike_new_groups_is_set_from_what_it_holds(ctx: AwsContext, vpc: str) -> None:
    """Were AWS to give a new group another rule than its usual one, the read at the end shows
    it, and the group is brought to what the spec says from there. (An extra IPv4 rule stands in
    for AWS's IPv6 default: moto keeps a ``::/0`` range in the IPv4 rule's permission and does not
    revoke it.)"""
    ec2 = ctx.client("ec2")

    def extra_default(parsed: Any = None, **kwargs: Any) -> None:
        ec2.authorize_security_group_egress(GroupId=parsed["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 25, "ToPort": 25, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}])

    ec2.meta.events.register("after-call.ec2.CreateSecurityGroup", extra_default)
    counts = _counting(ctx)
    want = props(vpc)  # allow-all IPv4 egress kept, nothing IPv6
    live = KIND.create(ctx, ADDR, want)
    assert counts.get("DescribeSecurityGroups") == 2
    assert live.props["egress"] == [ALL_OUT] and live.props["ingress"] == want["ingress"]
    assert from_permissions(raw(ctx, live.id)["IpPermissionsEgress"], live.id) == [ALL_OUT]
