"""aws_lb_target_group against moto: HTTP and TCP groups round-trip, health check and attributes in
place, look-before-create by name, and delete waiting out ResourceInUse."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.lb_target_group import KIND
from tests.resources.test_lb import fail_first, other_cluster, record

ADDR = 'aws_lb_target_group.main["8123"]'
TCP_ADDR = 'aws_lb_target_group.main["8463"]'
HTTP_CHECK = {
    "enabled": True,
    "protocol": "HTTP",
    "path": "/",
    "port": "traffic-port",
    "matcher": "200",
    "interval": 15,
    "timeout": 5,
    "healthy_threshold": 3,
    "unhealthy_threshold": 3,
}
TCP_CHECK = {
    "enabled": True,
    "protocol": "TCP",
    "path": None,
    "port": "traffic-port",
    "matcher": None,
    "interval": 15,
    "timeout": 10,
    "healthy_threshold": 3,
    "unhealthy_threshold": 3,
}
STICKY = {"enabled": True, "type": "lb_cookie", "cookie_duration": 86400}


@pytest.fixture
def vpc(ctx: AwsContext) -> str:
    return str(ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def tags(address: str, **extra: str) -> dict[str, str]:
    return {"Name": "c1-tg", "byoc:cluster": "test", "byoc:address": address, **extra}


def http_tg(vpc: str, **over: Any) -> dict[str, Any]:
    base = {
        "name": "c1-8123",
        "port": 8123,
        "protocol": "HTTP",
        "vpc_id": vpc,
        "target_type": "instance",
        "health_check": HTTP_CHECK,
        "deregistration_delay": 30,
        "stickiness": STICKY,
        "tags": tags(ADDR, team="a"),
    }
    return {**base, **over}


def tcp_tg(vpc: str, **over: Any) -> dict[str, Any]:
    base = {
        "name": "c1-8463",
        "port": 8463,
        "protocol": "TCP",
        "vpc_id": vpc,
        "target_type": "instance",
        "health_check": TCP_CHECK,
        "deregistration_delay": 30,
        "stickiness": None,
        "tags": tags(TCP_ADDR),
    }
    return {**base, **over}


def test_http_group_create_equals_discover(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, http_tg(vpc))
    assert live.address == ADDR and ":targetgroup/c1-8123/" in live.id
    assert live.props == http_tg(vpc)
    assert live.attrs == {"arn": live.id, "arn_suffix": live.id.split(":")[5]}
    assert live.attr("arn_suffix").startswith("targetgroup/c1-8123/")
    assert KIND.discover(ctx) == [live]


def test_tcp_groups_with_tcp_and_http_checks(ctx: AwsContext, vpc: str) -> None:
    native = KIND.create(ctx, TCP_ADDR, tcp_tg(vpc))
    addr = 'aws_lb_target_group.main["3218"]'
    streaming = tcp_tg(vpc, name="c1-3218", port=3218, health_check=HTTP_CHECK, tags=tags(addr))
    live = KIND.create(ctx, addr, streaming)
    assert native.props == tcp_tg(vpc) and live.props == streaming
    assert sorted(KIND.discover(ctx), key=lambda x: x.address) == [live, native]


def test_not_discovered_for_another_cluster(ctx: AwsContext, vpc: str) -> None:
    KIND.create(ctx, ADDR, http_tg(vpc))
    assert KIND.discover(other_cluster(ctx)) == []


def test_declared_rules() -> None:
    assert KIND.force_new == {"name", "port", "protocol", "vpc_id", "target_type"}
    assert KIND.pins == frozenset()
    assert KIND.holds_data is False


def test_update_health_check_attributes_and_tags(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, http_tg(vpc))
    check = {**HTTP_CHECK, "interval": 30, "matcher": "200-299", "healthy_threshold": 2}
    want = http_tg(
        vpc, health_check=check, deregistration_delay=120, stickiness=None, tags=tags(ADDR, env="p")
    )
    updated = KIND.update(ctx, live, want, {"health_check", "deregistration_delay", "stickiness", "tags"})
    assert updated.id == live.id and updated.props == want
    assert KIND.discover(ctx) == [updated]
    again = http_tg(vpc, stickiness={**STICKY, "cookie_duration": 3600}, tags=tags(ADDR, env="p"))
    updated = KIND.update(ctx, updated, again, {"health_check", "deregistration_delay", "stickiness"})
    assert KIND.discover(ctx) == [updated] and updated.props == again


def test_switching_the_check_to_tcp_drops_path_and_matcher(ctx: AwsContext, vpc: str) -> None:
    # moto keeps the old path and matcher after ModifyTargetGroup(HealthCheckProtocol=TCP)
    live = KIND.create(ctx, TCP_ADDR, tcp_tg(vpc, health_check=HTTP_CHECK))
    calls = record(ctx, "ModifyTargetGroup")
    updated = KIND.update(ctx, live, tcp_tg(vpc), {"health_check"})
    assert "HealthCheckPath" not in calls[0] and "Matcher" not in calls[0]
    assert KIND.discover(ctx) == [updated] and updated.props["health_check"] == TCP_CHECK


def test_only_changed_kinds_of_setting_are_sent(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, http_tg(vpc))
    modify = record(ctx, "ModifyTargetGroup")
    attrs = record(ctx, "ModifyTargetGroupAttributes")
    KIND.update(ctx, live, http_tg(vpc, deregistration_delay=0), {"deregistration_delay"})
    assert modify == [] and len(attrs) == 1
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "0"} in attrs[0]["Attributes"]


def test_look_before_create_adopts_own_group(ctx: AwsContext, vpc: str) -> None:
    want = http_tg(vpc)
    arn = ctx.client("elbv2").create_target_group(
        Name="c1-8123",
        Port=8123,
        Protocol="HTTP",
        VpcId=vpc,
        Tags=[{"Key": k, "Value": v} for k, v in want["tags"].items()],
    )["TargetGroups"][0]["TargetGroupArn"]  # interrupted before the health check and attributes
    creates = record(ctx, "CreateTargetGroup")
    live = KIND.create(ctx, ADDR, want)
    assert creates == [] and live.id == arn and live.props == want
    assert KIND.discover(ctx) == [live]


def test_look_before_create_refuses_other_groups(ctx: AwsContext, vpc: str) -> None:
    elb = ctx.client("elbv2")
    elb.create_target_group(Name="c1-8123", Port=8123, Protocol="HTTP", VpcId=vpc)
    with pytest.raises(CloudError, match="not this cluster's") as err:
        KIND.create(ctx, ADDR, http_tg(vpc))
    assert err.value.code == "DuplicateTargetGroupName"
    mine = [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": ADDR}]
    elb.create_target_group(Name="c1-other", Port=9000, Protocol="HTTP", VpcId=vpc, Tags=mine)
    with pytest.raises(CloudError, match="different port") as err:
        KIND.create(ctx, ADDR, http_tg(vpc, name="c1-other"))
    assert err.value.code == "Conflict"


def test_delete_then_delete_again(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, http_tg(vpc))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_delete_retries_resource_in_use(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, http_tg(vpc))
    calls = fail_first(ctx, "DeleteTargetGroup", "ResourceInUse", 3)
    KIND.delete(ctx, live)
    assert len(calls) == 4 and KIND.discover(ctx) == []


def test_delete_gives_up_while_a_listener_keeps_using_it(ctx: AwsContext, vpc: str) -> None:
    ec2, elb = ctx.client("ec2"), ctx.client("elbv2")
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-west-2{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    live = KIND.create(ctx, TCP_ADDR, tcp_tg(vpc))
    lb = elb.create_load_balancer(Name="x", Subnets=subnets, Type="network")["LoadBalancers"][0]
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Port=8463,
        Protocol="TCP",
        DefaultActions=[{"Type": "forward", "TargetGroupArn": live.id}],
    )
    short = AwsContext(cluster="test", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01, retry_timeout=0)
    calls = record(short, "DeleteTargetGroup")
    with pytest.raises(ClientError) as err:  # moto raises ResourceInUse like AWS
        KIND.delete(short, live)
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


def test_delete_raises_other_errors_at_once(ctx: AwsContext, vpc: str) -> None:
    live = KIND.create(ctx, ADDR, http_tg(vpc))
    calls = fail_first(ctx, "DeleteTargetGroup", "AccessDenied", 3)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
