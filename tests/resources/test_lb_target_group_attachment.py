"""aws_lb_target_group_attachment against moto: register/deregister, the address convention, and
by injection what moto hides (``initial``, ``draining``, a new instance ELB does not know yet);
plus the call budget of one discovery pass over all four ELB kinds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources import lb, lb_listener, lb_target_group
from byoc.resources.lb_target_group_attachment import KIND, attachment_address
from tests.resources.test_lb import fail_first, make_net, on, other_cluster, record


def owned(address: str) -> list[dict[str, str]]:
    return [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": address}]


def addr(port: int, node: int) -> str:
    return f'aws_lb_target_group_attachment.node["{port}-{node}"]'


@pytest.fixture
def stack(ctx: AwsContext) -> dict[str, Any]:
    """Two owned target groups (8123, 3218), two owned instances and one foreign one."""
    net = make_net(ctx)
    ec2, elb = ctx.client("ec2"), ctx.client("elbv2")

    def instance(tags: list[dict[str, str]]) -> str:
        spec = [{"ResourceType": "instance", "Tags": tags}] if tags else []
        return str(
            ec2.run_instances(
                ImageId="ami-12345678",
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.micro",
                SubnetId=net["subnets"][0],
                TagSpecifications=spec,
            )["Instances"][0]["InstanceId"]
        )

    def tg(port: int) -> str:
        return str(
            elb.create_target_group(
                Name=f"c1-{port}",
                Port=port,
                Protocol="HTTP",
                VpcId=net["vpc_id"],
                Tags=owned(f'aws_lb_target_group.main["{port}"]'),
            )["TargetGroups"][0]["TargetGroupArn"]
        )

    return {
        "net": net,
        "tg": {p: tg(p) for p in (8123, 3218)},
        "node": [instance(owned(f'aws_instance.node["{i}"]')) for i in range(2)],
        "foreign": instance([]),
    }


def props(stack: dict[str, Any], port: int = 8123, node: int = 0) -> dict[str, Any]:
    return {"target_group_arn": stack["tg"][port], "target_id": stack["node"][node], "port": port}


def report_health(ctx: AwsContext, states: list[tuple[str, str | None]]) -> list[str]:
    """DescribeTargetHealth reports (state, reason) on its next len(states) answers (moto has every
    target healthy at once and removes deregistered ones at once); returns the states seen."""
    seen: list[str] = []

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        for desc in parsed.get("TargetHealthDescriptions", []):
            if len(seen) < len(states):
                state, reason = states[len(seen)]
                desc["TargetHealth"] = {"State": state, **({"Reason": reason} if reason else {})}
            seen.append(desc["TargetHealth"]["State"])

    on(ctx, "elbv2", "after-call.elbv2.DescribeTargetHealth", hook)
    return seen


def test_create_equals_discover(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    assert live.props == props(stack)
    assert live.id == f"{stack['tg'][8123]}|{stack['node'][0]}|8123"
    assert KIND.discover(ctx) == [live]


def test_address_convention() -> None:
    tg, node = 'aws_lb_target_group.main["8123"]', 'aws_instance.node["0"]'
    assert attachment_address(tg, node) == 'aws_lb_target_group_attachment.node["8123-0"]'
    assert attachment_address("aws_lb_target_group.main", node) == 'aws_lb_target_group_attachment.node["0"]'
    assert attachment_address("aws_lb_target_group.main", "aws_instance.one") == (
        "aws_lb_target_group_attachment.one"
    )


def test_every_node_in_every_group(ctx: AwsContext, stack: dict[str, Any]) -> None:
    lives = [KIND.create(ctx, addr(p, n), props(stack, p, n)) for p in (8123, 3218) for n in (0, 1)]
    assert sorted(KIND.discover(ctx), key=lambda x: x.address) == sorted(lives, key=lambda x: x.address)


def test_not_discovered_for_another_cluster_nor_foreign_targets(
    ctx: AwsContext, stack: dict[str, Any]
) -> None:
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    ctx.client("elbv2").register_targets(TargetGroupArn=stack["tg"][8123], Targets=[{"Id": stack["foreign"]}])
    assert KIND.discover(other_cluster(ctx)) == []
    assert KIND.discover(ctx) == [live]  # the foreign instance has no address


def test_declared_rules() -> None:
    assert KIND.force_new == {"target_group_arn", "target_id", "port"}
    assert KIND.pins == frozenset()
    assert KIND.holds_data is False


def test_create_waits_for_registration_not_health(ctx: AwsContext, stack: dict[str, Any]) -> None:
    seen = report_health(
        ctx,
        [
            ("unused", "Target.NotRegistered"),
            ("unused", "Target.NotRegistered"),
            ("initial", "Elb.RegistrationInProgress"),
        ],
    )
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    assert seen == ["unused", "unused", "initial"]  # initial (health checks pending) is enough
    assert live.props == props(stack)


def test_registered_in_a_group_no_listener_uses_counts(ctx: AwsContext, stack: dict[str, Any]) -> None:
    # AWS: a target of a group without a listener is "unused" for reason Target.NotInUse
    seen = report_health(ctx, [("unused", "Target.NotInUse")])
    KIND.create(ctx, addr(8123, 0), props(stack))
    assert seen == ["unused"]


def test_create_retries_a_target_elb_does_not_know_yet(ctx: AwsContext, stack: dict[str, Any]) -> None:
    calls = fail_first(ctx, "RegisterTargets", "InvalidTarget", 2)
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    assert len(calls) == 3 and KIND.discover(ctx) == [live]


def test_create_raises_other_errors_at_once(ctx: AwsContext, stack: dict[str, Any]) -> None:
    calls = fail_first(ctx, "RegisterTargets", "AccessDenied", 3)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.create(ctx, addr(8123, 0), props(stack))
    assert len(calls) == 1 and KIND.discover(ctx) == []


def test_delete_waits_while_the_target_drains(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    drain = ("draining", "Target.DeregistrationInProgress")
    seen = report_health(ctx, [drain, drain, drain])
    polls = record(ctx, "DescribeTargetHealth")
    KIND.delete(ctx, live)
    # three answers say draining, the fourth says not registered: only then may the node go
    assert seen == ["draining", "draining", "draining", "unused"] and len(polls) == 4
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # not registered any more: success


def test_discovery_skips_draining_targets(ctx: AwsContext, stack: dict[str, Any]) -> None:
    KIND.create(ctx, addr(8123, 0), props(stack))
    report_health(ctx, [("draining", "Target.DeregistrationInProgress")])
    described = record(ctx, "DescribeInstances", service="ec2")
    assert KIND.discover(ctx) == []
    assert described == []  # no target left to name: the instances are not read


def test_delete_timeout_names_the_attachment(
    ctx: AwsContext, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    report_health(ctx, [("draining", None)] * 10_000)
    monkeypatch.setattr(ctx, "poll", _short_poll(ctx))  # an hour of draining, in 50 ms
    with pytest.raises(CloudError, match="to drain") as err:
        KIND.delete(ctx, live)
    assert err.value.address == live.address and err.value.aws_id == live.id


def _short_poll(ctx: AwsContext) -> Any:
    poll = ctx.poll

    def short(read: Any, done: Any, *, timeout: float = 900.0, what: str = "") -> Any:
        return poll(read, done, timeout=0.05, what=what)

    return short


def test_delete_raises_other_errors_at_once(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    calls = fail_first(ctx, "DeregisterTargets", "AccessDenied", 3)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


def test_one_discovery_pass_over_the_four_kinds_shares_every_read(
    ctx: AwsContext, stack: dict[str, Any]
) -> None:
    """An ALB, two listeners, two groups, four attachments: the reads a pass needs, once each."""
    net = stack["net"]
    alb = lb.KIND.create(
        ctx,
        "aws_lb.main",
        {
            "name": "c1-lb",
            "load_balancer_type": "application",
            "internal": True,
            "subnets": sorted(net["subnets"][:2]),
            "security_groups": net["sgs"][:1],
            "idle_timeout": 3600,
            "enable_deletion_protection": False,
            "enable_cross_zone_load_balancing": None,
            "tags": {"byoc:cluster": "test", "byoc:address": "aws_lb.main"},
        },
    )
    for port, tg_arn in stack["tg"].items():
        lb_listener.KIND.create(
            ctx,
            f'aws_lb_listener.main["{port}"]',
            {
                "load_balancer_arn": alb.id,
                "port": port,
                "protocol": "HTTP",
                "certificate_arn": None,
                "ssl_policy": None,
                "default_target_group_arn": tg_arn,
                "tags": {"byoc:cluster": "test", "byoc:address": f'aws_lb_listener.main["{port}"]'},
            },
        )
        for node in (0, 1):
            KIND.create(ctx, addr(port, node), props(stack, port, node))
    counts: Counter[str] = Counter()
    for service in ("elbv2", "ec2", "resourcegroupstaggingapi"):
        on(ctx, service, f"before-call.{service}", lambda model, **kw: counts.update([model.name]))
    kinds = [lb.KIND, lb_target_group.KIND, lb_listener.KIND, KIND]
    with ctx.discovery_pass():
        found = {k.kind: k.discover(ctx) for k in kinds}
    assert [len(found[k.kind]) for k in kinds] == [1, 2, 2, 4]
    assert dict(counts) == {
        "GetResources": 1,
        "DescribeLoadBalancers": 1,
        "DescribeLoadBalancerAttributes": 1,
        "DescribeTargetGroups": 1,
        "DescribeTargetGroupAttributes": 2,
        "DescribeListeners": 1,
        "DescribeTags": 1,
        "DescribeTargetHealth": 2,
        "DescribeInstances": 1,
    }


def test_the_look_names_the_instances_from_their_tags_alone(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123, 0), props(stack))
    ctx.client("elbv2").register_targets(TargetGroupArn=stack["tg"][8123], Targets=[{"Id": stack["foreign"]}])
    described = record(ctx, "DescribeInstances", service="ec2")
    tagged = record(ctx, "DescribeTags", service="ec2")
    assert KIND.find(ctx, addr(8123, 0)) == live
    assert KIND.find(ctx, addr(8123, 1)) is None and KIND.find(ctx, addr(3218, 0)) is None
    assert described == [] and len(tagged) == 3  # each look: the tags, never a describe of every instance
    assert KIND.find(other_cluster(ctx), addr(8123, 0)) is None
    assert KIND.discover(ctx) == [live]  # discovery names them from the instance kind's describe
