"""aws_lb_listener against moto: ALB HTTP listeners, NLB TCP listeners, HTTPS with an ACM
certificate, in-place changes, tags read by DescribeTags, and look-before-create by port."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.lb_listener import KIND
from tests.resources.test_lb import fail_first, make_net, other_cluster, record

POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def addr(port: int | str) -> str:
    return f'aws_lb_listener.main["{port}"]'


def tags(address: str) -> dict[str, str]:
    return {"Name": "c1", "byoc:cluster": "test", "byoc:address": address}


@pytest.fixture
def stack(ctx: AwsContext) -> dict[str, Any]:
    """An ALB and an NLB with a target group per Proton port, made directly in moto."""
    net = make_net(ctx)
    elb = ctx.client("elbv2")

    def lb(name: str, kind: str, sgs: list[str]) -> str:
        owned = [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": f"aws_lb.{name}"}]
        return str(
            elb.create_load_balancer(
                Name=name, Subnets=net["subnets"][:2], SecurityGroups=sgs, Type=kind, Tags=owned
            )["LoadBalancers"][0]["LoadBalancerArn"]
        )

    def tg(port: int, protocol: str) -> str:
        return str(
            elb.create_target_group(
                Name=f"{protocol.lower()}-{port}", Port=port, Protocol=protocol, VpcId=net["vpc_id"]
            )["TargetGroups"][0]["TargetGroupArn"]
        )

    return {
        "alb": lb("alb", "application", net["sgs"][:1]),
        "nlb": lb("nlb", "network", []),
        "http": {p: tg(p, "HTTP") for p in (8123, 3218)},
        "tcp": {p: tg(p, "TCP") for p in (8123, 3218, 8463)},
    }


def http(stack: dict[str, Any], key: int = 8123, **over: Any) -> dict[str, Any]:
    """The HTTP listener on port ``key`` forwarding to the HTTP group of that port (``over`` wins)."""
    base = {
        "load_balancer_arn": stack["alb"],
        "port": key,
        "protocol": "HTTP",
        "certificate_arn": None,
        "ssl_policy": None,
        "default_target_group_arn": stack["http"][key],
        "tags": tags(addr(key)),
    }
    return {**base, **over}


def tcp(stack: dict[str, Any], port: int) -> dict[str, Any]:
    return {
        "load_balancer_arn": stack["nlb"],
        "port": port,
        "protocol": "TCP",
        "certificate_arn": None,
        "ssl_policy": None,
        "default_target_group_arn": stack["tcp"][port],
        "tags": tags(f'aws_lb_listener.native["{port}"]'),
    }


def cert(ctx: AwsContext) -> str:
    """moto's ELB checks certificate ARNs against ACM."""
    return str(ctx.client("acm").request_certificate(DomainName="proton.example.com")["CertificateArn"])


def test_alb_with_two_http_listeners_round_trips(ctx: AwsContext, stack: dict[str, Any]) -> None:
    lives = [KIND.create(ctx, addr(p), http(stack, p)) for p in (8123, 3218)]
    assert [live.props for live in lives] == [http(stack, 8123), http(stack, 3218)]
    assert all(live.attrs == {"arn": live.id} and ":listener/app/alb/" in live.id for live in lives)
    assert sorted(KIND.discover(ctx), key=lambda x: x.address) == sorted(lives, key=lambda x: x.address)


def test_nlb_with_three_tcp_listeners_round_trips(ctx: AwsContext, stack: dict[str, Any]) -> None:
    lives = [
        KIND.create(ctx, tcp(stack, p)["tags"]["byoc:address"], tcp(stack, p)) for p in (8123, 3218, 8463)
    ]
    assert [live.props for live in lives] == [tcp(stack, p) for p in (8123, 3218, 8463)]
    assert sorted(KIND.discover(ctx), key=lambda x: x.address) == sorted(lives, key=lambda x: x.address)


def test_listener_tags_come_from_one_describe_tags(ctx: AwsContext, stack: dict[str, Any]) -> None:
    for p in (8123, 3218, 8463):
        KIND.create(ctx, tcp(stack, p)["tags"]["byoc:address"], tcp(stack, p))
    KIND.create(ctx, addr(8123), http(stack))
    calls = record(ctx, "DescribeTags")
    with ctx.discovery_pass():
        assert len(KIND.discover(ctx)) == 4
        assert len(KIND.discover(ctx)) == 4
    assert len(calls) == 1 and len(calls[0]["ResourceArns"]) == 4


def test_https_listener_with_certificate(ctx: AwsContext, stack: dict[str, Any]) -> None:
    want = http(stack, 8123, port=8443, protocol="HTTPS", certificate_arn=cert(ctx), ssl_policy=POLICY)
    live = KIND.create(ctx, addr(8123), want)
    assert live.props == want and KIND.discover(ctx) == [live]
    # back to HTTP: moto keeps the certificate and policy (and reports a policy on HTTP listeners)
    plain = http(stack)
    live = KIND.update(ctx, live, plain, {"port", "protocol", "certificate_arn", "ssl_policy"})
    assert live.props == plain and KIND.discover(ctx) == [live]
    live = KIND.update(ctx, live, want, {"port", "protocol", "certificate_arn", "ssl_policy"})
    assert KIND.discover(ctx) == [live] and live.props == want


def test_not_discovered_for_another_cluster(ctx: AwsContext, stack: dict[str, Any]) -> None:
    KIND.create(ctx, addr(8123), http(stack))
    assert KIND.discover(other_cluster(ctx)) == []


def test_declared_rules() -> None:
    assert KIND.force_new == {"load_balancer_arn"}
    assert KIND.pins == {"default_target_group_arn"}
    assert KIND.holds_data is False


def test_update_port_target_group_and_tags(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123), http(stack))
    want = http(
        stack, port=9000, default_target_group_arn=stack["http"][3218], tags={**tags(addr(8123)), "x": "1"}
    )
    calls = record(ctx, "ModifyListener")
    updated = KIND.update(ctx, live, want, {"port", "default_target_group_arn", "tags"})
    assert len(calls) == 1 and updated.props == want and updated.id == live.id
    assert KIND.discover(ctx) == [updated]
    updated = KIND.update(ctx, updated, http(stack), {"port", "default_target_group_arn", "tags"})
    assert KIND.discover(ctx) == [updated] and updated.props == http(stack)


def test_tags_only_change_does_not_modify_the_listener(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123), http(stack))
    calls = record(ctx, "ModifyListener")
    updated = KIND.update(ctx, live, http(stack, tags={**tags(addr(8123)), "env": "p"}), {"tags"})
    assert calls == [] and KIND.discover(ctx) == [updated]


def test_look_before_create_adopts_own_listener_on_the_port(ctx: AwsContext, stack: dict[str, Any]) -> None:
    elb = ctx.client("elbv2")
    arn = elb.create_listener(
        LoadBalancerArn=stack["alb"],
        Port=8123,
        Protocol="HTTP",
        DefaultActions=[{"Type": "forward", "TargetGroupArn": stack["http"][3218]}],
        Tags=[{"Key": k, "Value": v} for k, v in tags(addr(8123)).items()],
    )["Listeners"][0]["ListenerArn"]
    creates = record(ctx, "CreateListener")
    live = KIND.create(ctx, addr(8123), http(stack))
    assert creates == [] and live.id == arn and live.props == http(stack)
    # moto would have made a second listener on the port (AWS: DuplicateListener)
    assert len(elb.describe_listeners(LoadBalancerArn=stack["alb"])["Listeners"]) == 1
    assert KIND.discover(ctx) == [live]


def test_look_before_create_refuses_a_foreign_listener(ctx: AwsContext, stack: dict[str, Any]) -> None:
    ctx.client("elbv2").create_listener(
        LoadBalancerArn=stack["alb"],
        Port=8123,
        Protocol="HTTP",
        DefaultActions=[{"Type": "forward", "TargetGroupArn": stack["http"][8123]}],
    )
    with pytest.raises(CloudError, match="port 8123") as err:
        KIND.create(ctx, addr(8123), http(stack))
    assert err.value.code == "DuplicateListener"


def test_delete_then_delete_again(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123), http(stack))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)
    # the target group it pinned can go now
    ctx.client("elbv2").delete_target_group(TargetGroupArn=stack["http"][8123])


def test_delete_raises_other_errors_at_once(ctx: AwsContext, stack: dict[str, Any]) -> None:
    live = KIND.create(ctx, addr(8123), http(stack))
    calls = fail_first(ctx, "DeleteListener", "AccessDenied", 3)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
