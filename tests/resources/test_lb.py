"""aws_lb against moto: ALB and NLB round-trip, in-place changes, look-before-create, and by
injection what moto hides (``provisioning``, ``failed``, deletion protection, a stale index)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.lb import KIND

ADDR = "aws_lb.main"
NLB = "aws_lb.native"


# -- helpers shared by the ELB tests ---------------------------------------------------------
def on(ctx: AwsContext, service: str, event: str, hook: Callable[..., Any]) -> None:
    ctx.client(service).meta.events.register_first(event, hook)


def record(ctx: AwsContext, op: str, service: str = "elbv2") -> list[dict[str, Any]]:
    """The parameters of every ``op`` call made from now on."""
    calls: list[dict[str, Any]] = []
    on(
        ctx,
        service,
        f"before-parameter-build.{service}.{op}",
        lambda params, **kw: calls.append(dict(params)),
    )
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int, service: str = "elbv2") -> list[int]:
    """Make ``op`` raise ``code`` on its first ``times`` calls; returns the call counter."""
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    on(ctx, service, f"before-call.{service}.{op}", hook)
    return calls


def other_cluster(ctx: AwsContext) -> AwsContext:
    return AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)


def make_net(ctx: AwsContext) -> dict[str, Any]:
    """A VPC, three subnets in three AZs and two security groups, made directly in moto."""
    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{16 * i}.0/20", AvailabilityZone=f"us-west-2{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("abc")
    ]
    sgs = [ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"] for n in ("lb", "lb2")]
    return {"vpc_id": vpc, "subnets": subnets, "sgs": sgs}


def lb_tags(address: str, **extra: str) -> dict[str, str]:
    return {"Name": "c1-lb", "byoc:cluster": "test", "byoc:address": address, **extra}


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def net(ctx: AwsContext) -> dict[str, Any]:
    return make_net(ctx)


def alb(net: dict[str, Any], **over: Any) -> dict[str, Any]:
    base = {
        "name": "c1-lb",
        "load_balancer_type": "application",
        "internal": True,
        "subnets": sorted(net["subnets"][:2]),
        "security_groups": [net["sgs"][0]],
        "idle_timeout": 3600,
        "enable_deletion_protection": False,
        "enable_cross_zone_load_balancing": None,
        "drop_invalid_header_fields": True,
        "access_logs": [],
        "tags": lb_tags(ADDR, team="a"),
    }
    return {**base, **over}


def nlb(net: dict[str, Any], **over: Any) -> dict[str, Any]:
    base = {
        "name": "c1-nlb",
        "load_balancer_type": "network",
        "internal": False,
        "subnets": sorted(net["subnets"][:2]),
        "security_groups": [],
        "idle_timeout": None,
        "enable_deletion_protection": False,
        "enable_cross_zone_load_balancing": True,
        "drop_invalid_header_fields": None,
        "access_logs": [],
        "tags": lb_tags(NLB),
    }
    return {**base, **over}


def report_state(ctx: AwsContext, states: list[str]) -> list[str]:
    """DescribeLoadBalancers reports ``states`` on its next len(states) answers; returns what each
    answer reported (moto has every load balancer active at once)."""
    seen: list[str] = []

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        for lb in parsed.get("LoadBalancers", []):
            if len(seen) < len(states):
                lb["State"] = {"Code": states[len(seen)], "Reason": "injected"}
            seen.append(lb["State"]["Code"])

    on(ctx, "elbv2", "after-call.elbv2.DescribeLoadBalancers", hook)
    return seen


# -- tests -------------------------------------------------------------------------------------
def test_alb_create_equals_discover(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, alb(net))
    assert live.address == ADDR and ":loadbalancer/app/c1-lb/" in live.id
    assert live.props == alb(net)
    assert KIND.discover(ctx) == [live]
    lb_id = live.id.rsplit("/", 1)[1]
    assert live.attrs == {
        "arn": live.id,
        "arn_suffix": f"app/c1-lb/{lb_id}",
        "dns_name": "c1-lb-1.us-west-2.elb.amazonaws.com",
        "zone_id": live.attr("zone_id"),
    }
    assert live.attr("zone_id")


def test_nlb_create_equals_discover_and_arn_suffix_says_net(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, NLB, nlb(net))
    assert live.props == nlb(net)
    assert KIND.discover(ctx) == [live]
    # moto writes app/ into NLB ARNs; CloudWatch's dimension must say net/
    assert ":loadbalancer/app/c1-nlb/" in live.id
    assert live.attr("arn_suffix") == f"net/c1-nlb/{live.id.rsplit('/', 1)[1]}"


def test_not_discovered_for_another_cluster(ctx: AwsContext, net: dict[str, Any]) -> None:
    KIND.create(ctx, ADDR, alb(net))
    assert KIND.discover(other_cluster(ctx)) == []
    assert KIND.find(other_cluster(ctx), ADDR) is None
    assert KIND.find(ctx, ADDR) is not None


def test_declared_rules() -> None:
    assert KIND.force_new == {"name", "load_balancer_type", "internal"}
    assert KIND.pins == frozenset()
    assert KIND.holds_data is False


def test_update_alb_in_place(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, alb(net))
    tags = {k: v for k, v in alb(net)["tags"].items() if k != "team"} | {"env": "prod"}
    want = alb(
        net,
        subnets=sorted([net["subnets"][0], net["subnets"][2]]),
        security_groups=sorted(net["sgs"]),
        idle_timeout=120,
        enable_deletion_protection=True,
        tags=tags,
    )
    changed = {"subnets", "security_groups", "idle_timeout", "enable_deletion_protection", "tags"}
    updated = KIND.update(ctx, live, want, changed)
    assert updated.id == live.id and updated.props == want
    assert KIND.discover(ctx) == [updated]


def test_update_nlb_cross_zone_and_groups(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, NLB, nlb(net, security_groups=[net["sgs"][0]]))
    want = nlb(net, security_groups=[net["sgs"][1]], enable_cross_zone_load_balancing=False)
    calls = record(ctx, "ModifyLoadBalancerAttributes")
    updated = KIND.update(ctx, live, want, {"security_groups", "enable_cross_zone_load_balancing"})
    assert calls == [
        {
            "LoadBalancerArn": live.id,
            "Attributes": [{"Key": "load_balancing.cross_zone.enabled", "Value": "false"}],
        }
    ]
    assert KIND.discover(ctx) == [updated] and updated.props == want


def test_nlb_created_without_groups_cannot_get_any(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, NLB, nlb(net))
    calls = record(ctx, "SetSecurityGroups")
    with pytest.raises(CloudError, match="created without security groups") as err:
        KIND.update(ctx, live, nlb(net, security_groups=[net["sgs"][0]]), {"security_groups"})
    assert err.value.address == NLB and err.value.aws_id == live.id
    assert calls == []


def test_create_waits_through_provisioning(ctx: AwsContext, net: dict[str, Any]) -> None:
    seen = report_state(ctx, ["provisioning", "provisioning", "provisioning"])
    live = KIND.create(ctx, ADDR, alb(net))
    assert seen == ["provisioning", "provisioning", "provisioning", "active"]
    assert live.props == alb(net)


def test_failed_provisioning_is_cleaned_up_and_reported(ctx: AwsContext, net: dict[str, Any]) -> None:
    report_state(ctx, ["provisioning", "failed"])
    with pytest.raises(CloudError, match="failed to provision") as err:
        KIND.create(ctx, ADDR, alb(net))
    assert err.value.code == "LoadBalancerFailed" and err.value.address == ADDR
    assert KIND.discover(ctx) == []


def test_create_sends_tags_and_attributes_in_two_calls(ctx: AwsContext, net: dict[str, Any]) -> None:
    creates = record(ctx, "CreateLoadBalancer")
    attrs = record(ctx, "ModifyLoadBalancerAttributes")
    KIND.create(ctx, ADDR, alb(net))
    assert len(creates) == 1 and creates[0]["Scheme"] == "internal" and creates[0]["IpAddressType"] == "ipv4"
    assert {t["Key"]: t["Value"] for t in creates[0]["Tags"]} == alb(net)["tags"]
    assert attrs[0]["Attributes"] == [
        {"Key": "idle_timeout.timeout_seconds", "Value": "3600"},
        {"Key": "deletion_protection.enabled", "Value": "false"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
    ]


def test_look_before_create_adopts_own_half_made_lb(ctx: AwsContext, net: dict[str, Any]) -> None:
    want = alb(net)
    tags = [{"Key": k, "Value": v} for k, v in want["tags"].items() if k != "team"]
    arn = ctx.client("elbv2").create_load_balancer(
        Name="c1-lb",
        Subnets=want["subnets"],
        SecurityGroups=want["security_groups"],
        Scheme="internal",
        Type="application",
        Tags=tags,
    )["LoadBalancers"][0]["LoadBalancerArn"]  # interrupted before its attributes were set
    creates = record(ctx, "CreateLoadBalancer")
    described = record(ctx, "DescribeLoadBalancers")
    live = KIND.create(ctx, ADDR, want)
    assert creates == [] and live.id == arn and live.props == want
    assert KIND.discover(ctx) == [live]
    # the duplicate-name trap: never a second LB, never an unbounded DescribeLoadBalancers
    assert len(ctx.client("elbv2").describe_load_balancers(Names=["c1-lb"])["LoadBalancers"]) == 1
    assert all(c.get("Names") or c.get("LoadBalancerArns") for c in described)


def test_create_refuses_someone_elses_lb(ctx: AwsContext, net: dict[str, Any]) -> None:
    ctx.client("elbv2").create_load_balancer(Name="c1-lb", Subnets=net["subnets"][:2], Type="network")
    with pytest.raises(CloudError, match="not this cluster's") as err:
        KIND.create(ctx, ADDR, alb(net))
    assert err.value.code == "DuplicateLoadBalancerName"
    assert len(ctx.client("elbv2").describe_load_balancers(Names=["c1-lb"])["LoadBalancers"]) == 1


def test_discovery_skips_an_arn_the_index_still_lists(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, alb(net))
    stale = live.id.replace("c1-lb", "c1-gone")

    def add_stale(parsed: dict[str, Any], **kwargs: Any) -> None:
        tags = [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": "aws_lb.gone"}]
        parsed["ResourceTagMappingList"].append({"ResourceARN": stale, "Tags": tags})

    on(ctx, "resourcegroupstaggingapi", "after-call.resourcegroupstaggingapi.GetResources", add_stale)
    calls = record(ctx, "DescribeLoadBalancers")
    # real AWS refuses the whole batch for one unknown ARN (moto answers with the others)
    fail_first(ctx, "DescribeLoadBalancers", "LoadBalancerNotFound", 1)
    assert KIND.discover(ctx) == [live]
    # the batch fails, then each ARN is read alone (the stale one: LoadBalancerNotFound from moto)
    assert [sorted(c["LoadBalancerArns"]) for c in calls] == [sorted([live.id, stale]), [live.id], [stale]]


def test_discovery_describes_20_arns_a_call(ctx: AwsContext, net: dict[str, Any]) -> None:
    elb = ctx.client("elbv2")
    for i in range(21):
        tags = [
            {"Key": "byoc:cluster", "Value": "test"},
            {"Key": "byoc:address", "Value": f'aws_lb.x["{i}"]'},
        ]
        elb.create_load_balancer(Name=f"lb-{i}", Subnets=net["subnets"][:2], Type="network", Tags=tags)
    calls = record(ctx, "DescribeLoadBalancers")
    with ctx.discovery_pass():
        assert len(KIND.discover(ctx)) == 21
        assert len(KIND.discover(ctx)) == 21  # shared within the pass
    assert sorted(len(c["LoadBalancerArns"]) for c in calls) == [1, 20]


def test_delete_then_delete_again(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, alb(net))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # already gone: success


def test_delete_retries_eventual_errors(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, alb(net))
    calls = fail_first(ctx, "DeleteLoadBalancer", "ResourceInUse", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


LOGS = [{"bucket": "c1-logs", "prefix": "lb", "enabled": True}]


def test_access_logs_round_trip_and_change_in_place(ctx: AwsContext, net: dict[str, Any]) -> None:
    calls = record(ctx, "ModifyLoadBalancerAttributes")
    live = KIND.create(ctx, ADDR, alb(net, access_logs=LOGS, enable_deletion_protection=True))
    sent = {a["Key"]: a["Value"] for a in calls[0]["Attributes"]}
    assert {k: v for k, v in sent.items() if k.startswith(("access_logs", "deletion"))} == {
        "access_logs.s3.enabled": "true", "access_logs.s3.bucket": "c1-logs", "access_logs.s3.prefix": "lb",
        "deletion_protection.enabled": "true"}
    assert live.props == alb(net, access_logs=LOGS, enable_deletion_protection=True)
    assert KIND.discover(ctx) == [live]
    # off again: the block goes (AWS keeps the bucket name, with enabled false)
    off = KIND.update(ctx, live, alb(net, enable_deletion_protection=True), {"access_logs"})
    assert calls[-1]["Attributes"] == [{"Key": "access_logs.s3.enabled", "Value": "false"}]
    (found,) = KIND.discover(ctx)
    assert found.props["access_logs"] == [{"bucket": "c1-logs", "prefix": "lb", "enabled": False}]
    assert off.props["access_logs"] == []


def test_an_lb_without_access_logs_sends_none(ctx: AwsContext, net: dict[str, Any]) -> None:
    calls = record(ctx, "ModifyLoadBalancerAttributes")
    KIND.create(ctx, ADDR, alb(net))
    assert not [a for a in calls[0]["Attributes"] if a["Key"].startswith("access_logs")]


def test_access_logs_wait_for_the_bucket_policy(ctx: AwsContext, net: dict[str, Any]) -> None:
    # ELB checks that it may write into the bucket; a policy put a moment ago may not count yet
    denied = []

    def hook(**kwargs: Any) -> None:
        denied.append(1)
        if len(denied) <= 2:
            raise ClientError({"Error": {"Code": "InvalidConfigurationRequest", "Message":
                               "Access Denied for bucket: c1-logs. Please check S3bucket permission"}},
                              "ModifyLoadBalancerAttributes")

    on(ctx, "elbv2", "before-call.elbv2.ModifyLoadBalancerAttributes", hook)
    live = KIND.create(ctx, ADDR, alb(net, access_logs=LOGS))
    assert len(denied) == 3 and live.props["access_logs"] == LOGS


def test_other_invalid_configuration_is_not_retried(ctx: AwsContext, net: dict[str, Any]) -> None:
    calls = fail_first(ctx, "ModifyLoadBalancerAttributes", "InvalidConfigurationRequest", 5)
    with pytest.raises(ClientError):
        KIND.create(ctx, ADDR, alb(net, access_logs=LOGS))
    assert len(calls) == 1


def test_prepare_delete_turns_deletion_protection_off_and_says_so(
    ctx: AwsContext, net: dict[str, Any]
) -> None:
    # AWS refuses to delete a protected load balancer (moto does too here: tests.awsrealism)
    live = KIND.create(ctx, ADDR, alb(net, enable_deletion_protection=True))
    with pytest.raises(ClientError, match="OperationNotPermitted"):
        ctx.client("elbv2").delete_load_balancer(LoadBalancerArn=live.id)
    assert KIND.prepare_delete(ctx, live) == ("deletion protection turned off",)
    (found,) = KIND.discover(ctx)
    assert found.props["enable_deletion_protection"] is False
    # run again (a run stopped before the delete): nothing left to do, nothing said
    assert KIND.prepare_delete(ctx, live) == ()
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    assert KIND.prepare_delete(ctx, live) == ()  # gone: nothing to do


def test_delete_refused_for_protection_turns_it_off_and_deletes(ctx: AwsContext, net: dict[str, Any]) -> None:
    # protection turned on after the plan read it (the state says off): AWS refuses, delete recovers
    live = KIND.create(ctx, ADDR, alb(net))
    ctx.client("elbv2").modify_load_balancer_attributes(
        LoadBalancerArn=live.id, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    deletes = record(ctx, "DeleteLoadBalancer")
    KIND.delete(ctx, live)
    assert len(deletes) == 2 and KIND.discover(ctx) == []


def test_delete_refused_twice_reports_it(ctx: AwsContext, net: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, alb(net))
    calls = fail_first(ctx, "DeleteLoadBalancer", "OperationNotPermitted", 5)
    with pytest.raises(ClientError) as err:
        KIND.delete(ctx, live)
    assert err.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert len(calls) == 2 and KIND.discover(ctx) == [live]
