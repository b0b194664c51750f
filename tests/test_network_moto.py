"""The network of specs/prod.yaml on moto: apply → a second plan is empty → destroy leaves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.planner import PlanOptions
from byoc.resources import registry
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import free_eips_of_deleted_nat_gateways

ROOT = Path(__file__).resolve().parents[1]


class CallLog:
    """Records the order of AWS calls through botocore's event system (a seam, not a fake)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.params: list[dict[str, Any]] = []

    def hook(self, event_name: str, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.calls.append(event_name.rsplit(".", 1)[-1])
        self.params.append(dict((params or {}).get("body") or {}))

    def where(self, op: str, key: str, value: str) -> int:
        """Index of the first call ``op`` whose request has ``key`` (or ``key.1``) = value."""
        for i, (c, p) in enumerate(zip(self.calls, self.params, strict=True)):
            if c == op and value in (p.get(key), p.get(f"{key}.1")):
                return i
        raise ValueError(f"no {op} with {key}={value}")

    def index(self, op: str) -> int:
        return self.calls.index(op)

    def last(self, op: str) -> int:
        return len(self.calls) - 1 - self.calls[::-1].index(op)


NETWORK = {"aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_eip", "aws_nat_gateway", "aws_route_table",
           "aws_route_table_association", "aws_security_group"}


@pytest.fixture(autouse=True)
def network_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the network layer alone: the blueprint is cut down to its kinds."""
    from byoc import blueprint, engine

    full = blueprint.build
    monkeypatch.setattr(engine.blueprint, "build",
                        lambda spec, facts=None: [r for r in full(spec, facts) if r.kind in NETWORK])


@pytest.fixture
def engine(moto: None, tmp_path: Path) -> Iterator[tuple[Engine, CallLog]]:
    log = CallLog()
    spec = load_spec(str(ROOT / "specs/prod.yaml"))
    ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01,
                     event_hooks=[("before-call.ec2", log.hook)])
    kinds = {k: v for k, v in registry().items() if k in NETWORK}
    yield Engine(spec, ctx=ctx, backend=LocalBackend(tmp_path, spec.cluster_name), kinds=kinds,
                 ami_resolver=lambda t: "ami-0123456789abcdef0"), log


def owned(ctx: AwsContext) -> dict[str, list[str]]:
    """Everything in moto tagged for the cluster, by EC2 kind (ignoring deleted NAT gateways)."""
    ec2 = ctx.client("ec2")
    f = [{"Name": "tag:byoc:cluster", "Values": [ctx.cluster]}]
    nats = [n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=f)["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
            and any(t["Key"] == "byoc:cluster" and t["Value"] == ctx.cluster for t in n.get("Tags", []))]
    out = {
        "vpc": [v["VpcId"] for v in ec2.describe_vpcs(Filters=f)["Vpcs"]],
        "subnet": [s["SubnetId"] for s in ec2.describe_subnets(Filters=f)["Subnets"]],
        "igw": [i["InternetGatewayId"]
                for i in ec2.describe_internet_gateways(Filters=f)["InternetGateways"]],
        "eip": [a["AllocationId"] for a in ec2.describe_addresses(Filters=f)["Addresses"]],
        "nat": nats,
        "rtb": [r["RouteTableId"] for r in ec2.describe_route_tables(Filters=f)["RouteTables"]],
        "sg": [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]],
    }
    return {k: v for k, v in out.items() if v}


def test_prod_network_apply_noop_destroy(engine: tuple[Engine, CallLog]) -> None:
    eng, log = engine
    plan = eng.plan()
    counts = plan.counts()
    # 1 VPC, 1 IGW, 6 subnets, 3 EIPs, 3 NATs, 4 route tables, 6 associations, 3 SGs (the rotation
    # function's too)
    assert counts == {"add": 27, "change": 0, "destroy": 0}
    result = eng.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    found = owned(eng.ctx)
    assert {k: len(v) for k, v in found.items()} == {
        "vpc": 1, "subnet": 6, "igw": 1, "eip": 3, "nat": 3, "rtb": 4, "sg": 3,
    }
    state = eng.state()
    assert state is not None and len(state.resources) == 27
    assert state.outputs["vpc_id"] == found["vpc"][0]

    again = eng.plan()
    assert not again.has_changes, [(c.address, c.reason) for c in again.actionable]

    log.calls.clear()
    log.params.clear()
    nat_eip = {r.id: r.props["allocation_id"] for a, r in state.resources.items() if "nat_gateway" in a}
    destroy = eng.plan(PlanOptions(destroy=True))
    assert destroy.counts() == {"add": 0, "change": 0, "destroy": 27}
    result = eng.apply(destroy)
    assert result.ok, [str(f.error) for f in result.failures]
    assert owned(eng.ctx) == {}
    state = eng.state()
    assert state is not None and not state.resources

    # AWS's hidden ordering: each NAT gateway is deleted and awaited until gone before its EIP
    # is released, and all of them before the internet gateway is detached.
    assert len(nat_eip) == 3
    for nat, eip in nat_eip.items():
        deleted = log.where("DeleteNatGateway", "NatGatewayId", nat)
        released = log.where("ReleaseAddress", "AllocationId", eip)
        assert deleted < released
        calls = list(enumerate(zip(log.calls, log.params, strict=True)))
        assert any(c == "DescribeNatGateways" and nat in p.values() for i, (c, p) in calls
                   if deleted < i < released)
    assert log.index("DetachInternetGateway") > log.last("DeleteNatGateway")
    assert log.index("DeleteVpc") > log.last("DeleteSubnet")


def test_changing_the_vpc_cidr_plans_a_replacement_of_the_network(engine: tuple[Engine, CallLog]) -> None:
    eng, _ = engine
    assert eng.apply(eng.plan()).ok
    spec = load_spec(str(ROOT / "specs/prod.yaml"), ["network.vpc_cidr=10.1.0.0/16"])
    eng2 = Engine(spec, ctx=eng.ctx, backend=eng.backend, kinds=eng.kinds, ami_resolver=lambda t: "ami-0")
    plan = eng2.plan()
    assert plan.change("aws_vpc.main").action == "replace"
    assert plan.change('aws_subnet.private["us-west-2a"]').action == "replace"
    assert plan.change("aws_security_group.node").action == "replace"


def test_an_attribute_changed_behind_byocs_back_is_updated_in_place(engine: tuple[Engine, CallLog]) -> None:
    eng, _ = engine
    assert eng.apply(eng.plan()).ok
    vpc_id = eng.state().resources["aws_vpc.main"].id  # type: ignore[union-attr]
    eng.ctx.client("ec2").modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": False})
    plan = eng.plan()
    assert [(c.address, c.action) for c in plan.actionable] == [("aws_vpc.main", "update")]
    assert eng.apply(plan).ok
    assert not eng.plan().has_changes


def test_replacing_the_whole_network_applies_in_a_safe_order(engine: tuple[Engine, CallLog]) -> None:
    eng, log = engine
    free_eips_of_deleted_nat_gateways(eng.ctx.client("ec2"))
    assert eng.apply(eng.plan()).ok
    old_vpc = eng.state().resources["aws_vpc.main"].id  # type: ignore[union-attr]
    spec = load_spec(str(ROOT / "specs/prod.yaml"), ["network.vpc_cidr=10.1.0.0/16"])
    eng2 = Engine(spec, ctx=eng.ctx, backend=eng.backend, kinds=eng.kinds, ami_resolver=lambda t: "ami-0")
    log.calls.clear()
    log.params.clear()
    result = eng2.apply(eng2.plan())
    assert result.ok, [str(f.error) for f in result.failures]
    assert not eng2.plan().has_changes
    vpcs = eng.ctx.client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:byoc:cluster", "Values": [spec.cluster_name]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["10.1.0.0/16"] and vpcs[0]["VpcId"] != old_vpc
    # the old VPC went only after everything in it had gone
    assert log.index("DeleteVpc") > log.last("DeleteSubnet")
    assert log.index("DeleteVpc") > log.index("DeleteInternetGateway")
