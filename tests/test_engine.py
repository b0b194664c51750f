"""The engine's wiring on the in-memory fake cloud: stale plans, re-checks, outputs, state."""

from __future__ import annotations

from pathlib import Path

import pytest

from byoc.engine import Engine
from byoc.errors import PlanError
from byoc.resources import registry
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.fakecloud import FakeCloud, FakeKind

ROOT = Path(__file__).resolve().parents[1]


def make(tmp_path: Path, cloud: FakeCloud, *overrides: str) -> Engine:
    spec = load_spec(str(ROOT / "specs/dev.yaml"), overrides)
    kinds = {k: FakeKind(k, cloud, like=v) for k, v in registry().items()}
    return Engine(spec, kinds=kinds, ctx=object(), backend=LocalBackend(tmp_path, spec.cluster_name),
                  ami_resolver=lambda itype: "ami-0123456789abcdef0")


def test_a_plan_made_before_another_apply_is_refused_as_stale(tmp_path: Path) -> None:
    cloud = FakeCloud()
    eng = make(tmp_path, cloud)
    first = eng.plan()
    eng.check_fresh(first)
    assert eng.apply(first).ok
    with pytest.raises(PlanError, match="stale: it was made against state serial 0"):
        eng.check_fresh(first)
    second = eng.plan()
    eng.check_fresh(second)  # a fresh one is fine


def test_a_plan_is_refused_when_the_spec_changed_or_is_another_cluster(tmp_path: Path) -> None:
    cloud = FakeCloud()
    p = make(tmp_path, cloud).plan()
    with pytest.raises(PlanError, match="has changed since this plan was made"):
        make(tmp_path, cloud, "compute.disk_size_gb=30").check_fresh(p)
    with pytest.raises(PlanError, match="for cluster 'dev-proton', not 'other'"):
        make(tmp_path, cloud, "cluster.name=other").check_fresh(p)


def test_applying_a_saved_plan_rechecks_and_adopts_instead_of_duplicating(tmp_path: Path) -> None:
    cloud = FakeCloud()
    eng = make(tmp_path, cloud)
    p = eng.plan()
    # between plan and apply, a crashed run had created the VPC (tagged, so findable)
    cloud.items["vpc-crash"] = {"address": "aws_vpc.main", "kind": "aws_vpc",
                                "props": dict(p.change("aws_vpc.main").desired or {})}
    assert eng.apply(p, recheck=True).ok
    vpcs = [i for i, v in cloud.items.items() if v["address"] == "aws_vpc.main"]
    assert vpcs == ["vpc-crash"]
    assert eng.state().resources["aws_vpc.main"].id == "vpc-crash"  # type: ignore[union-attr]


def test_outputs_follow_what_exists(tmp_path: Path) -> None:
    cloud = FakeCloud()
    eng = make(tmp_path, cloud)
    assert eng.apply(eng.plan()).ok
    out = eng.state().outputs  # type: ignore[union-attr]
    assert out["vpc_id"].startswith("aws_vpc-")
    assert len(out["public_subnet_ids"]) == 2 and len(out["private_subnet_ids"]) == 2
    assert set(out) == {"vpc_id", "public_subnet_ids", "private_subnet_ids", "lb_security_group_id",
                        "node_security_group_id", "load_balancer_dns_name", "endpoints", "instance_ids",
                        "bucket", "log_group", "admin_password_secret_arn"}
    dns = out["load_balancer_dns_name"]
    assert out["endpoints"] == {"http_batch": f"http://{dns}:8123", "http_streaming": f"http://{dns}:3218"}
    assert out["bucket"] == "dev-proton-data-byoc-example" and out["log_group"] == "/aws/proton/dev-proton"


def test_adding_an_az_never_moves_a_node_away_from_its_data_volume(tmp_path: Path) -> None:
    cloud = FakeCloud()
    eng = make(tmp_path, cloud, "compute.instance_count=3")
    assert eng.apply(eng.plan()).ok
    state = eng.state()
    assert state is not None
    before = {a: r.props.get("availability_zone") for a, r in state.resources.items()
              if a.startswith("aws_ebs_volume")}
    assert before['aws_ebs_volume.data["2"]'] == "us-west-2a"  # round-robin over 2 AZs
    grown = make(tmp_path, cloud, "compute.instance_count=4",
                 "aws.availability_zones=[us-west-2a, us-west-2b, us-west-2c]")
    plan = grown.plan()
    moved = [c.address for c in plan.actionable if c.kind in ("aws_ebs_volume", "aws_instance")
             and c.action != "create"]
    assert moved == []  # existing nodes stay in their volume's AZ
    new_volume = plan.change('aws_ebs_volume.data["3"]')
    assert new_volume.action == "create"
    assert new_volume.after is not None and new_volume.after["availability_zone"] == "us-west-2a"


# -- what discovery is told to expect (byoc.aws.context.AwsContext.known) ------------------------
def test_known_names_are_the_blueprints(tmp_path: Path) -> None:
    from byoc import blueprint

    xacct = 'security.cross_account_role={provider_account_id: "123456789012", external_id: abc}'
    link = ("load_balancer.type=network",
            'network.private_link={"allowed_principals": ["arn:aws:iam::123456789012:root"]}')
    for overrides in ((), (xacct, "monitoring.alarm_email=ops@example.com", *link)):
        spec = load_spec(str(ROOT / "specs/dev.yaml"), overrides)
        built = blueprint.build(spec)
        expected: dict[str, dict[str, frozenset[str]]] = {
            "aws_iam_role": {}, "aws_iam_instance_profile": {}, "aws_sns_topic_subscription": {},
            "aws_vpc_endpoint_service": {}}
        for r in built:
            if r.kind in ("aws_iam_role", "aws_iam_instance_profile"):
                expected[r.kind][r.props["name"]] = frozenset(r.props.get("inline_policies") or ())
            elif r.kind == "aws_sns_topic_subscription":
                expected[r.kind][r.props["protocol"]] = frozenset()
            elif r.kind == "aws_vpc_endpoint_service":
                expected[r.kind][r.address.split(".")[1]] = frozenset()
        assert blueprint.known_names(spec) == expected
        assert len(expected["aws_iam_role"]) == (3 if overrides else 2)  # node, flow logs (, management)


def test_expected_names_add_what_the_state_records(tmp_path: Path) -> None:
    from byoc.state.model import ResourceState, State

    eng = make(tmp_path, FakeCloud())
    doc = {"Version": "2012-10-17", "Statement": []}
    state = State.new("dev-proton")
    for rs in (
        ResourceState("aws_iam_role.node", "aws_iam_role", "dev-proton-node",
                      {"inline_policies": {"proton-node": doc, "extra": doc}}),
        ResourceState("aws_iam_role.old", "aws_iam_role", "dev-proton-old", {"inline_policies": {}}),
        ResourceState("aws_sns_topic_subscription.email", "aws_sns_topic_subscription", "arn:sub", {}),
        ResourceState("aws_vpc.main", "aws_vpc", "vpc-1", {}),
    ):
        state = state.with_resource(rs)
    assert eng.expected_names(state) == {
        "aws_iam_role": {"dev-proton-node": frozenset({"proton-node", "extra"}),
                         "dev-proton-flow-logs": frozenset({"vpc-flow-logs"}),
                         "dev-proton-old": frozenset()},
        "aws_iam_instance_profile": {"dev-proton-node": frozenset()},
        "aws_sns_topic_subscription": {"arn:sub": frozenset()},
        "aws_vpc_endpoint_service": {},
    }


def test_only_a_plain_plan_reads_by_name_every_full_audit_lists(moto: None, tmp_path: Path) -> None:
    # moto: a real AwsContext asks STS for the account (the log bucket's policy names it)
    from byoc.aws.context import AwsContext
    from byoc.planner import PlanOptions

    spec = load_spec(str(ROOT / "specs/dev.yaml"))
    cloud = FakeCloud()
    kinds = {k: FakeKind(k, cloud, like=v) for k, v in registry().items()}
    eng = Engine(spec, kinds=kinds, ctx=AwsContext(cluster=spec.cluster_name, region=spec.region),
                 backend=LocalBackend(tmp_path, spec.cluster_name), ami_resolver=lambda itype: "ami-0")
    eng.plan()
    assert eng.ctx.known == eng.expected_names(None) and eng.ctx.known["aws_iam_role"]
    for audit in (lambda: eng.plan(PlanOptions(delete_unmanaged=True)),
                  lambda: eng.plan(PlanOptions(destroy=True)), eng.drift):
        eng.plan()
        audit()
        assert eng.ctx.known is None


def test_no_state_but_a_deployed_cluster_is_refused_unless_adopt(tmp_path: Path) -> None:
    """Another directory (no state there) never takes the deployed cluster into a second state
    silently: plan and destroy plans are refused naming the state path; adopt=True takes it over."""
    from byoc.errors import AdoptError
    from byoc.planner import PlanOptions
    from byoc.render import render_plan

    cloud = FakeCloud()
    assert make(tmp_path / "a", cloud).apply(make(tmp_path / "a", cloud).plan()).ok
    other = make(tmp_path / "b", cloud)
    for options in (None, PlanOptions(destroy=True)):
        with pytest.raises(AdoptError, match=rf"no state for cluster dev-proton at {tmp_path}/b/"
                           r"dev-proton.json \(local\), but it is already deployed.*--adopt"):
            other.plan(options)
    assert not (tmp_path / "b/dev-proton.json").exists()
    other.adopt = True
    p = other.plan()
    assert p.adopt and not p.actionable
    assert render_plan(p).startswith(f"State: {tmp_path}/b/dev-proton.json (local)\n")
    assert other.apply(p).ok
    assert set(other.state().resources) == set(make(tmp_path / "a", cloud).state().resources)  # type: ignore[union-attr]


def test_a_first_apply_saves_a_state_before_its_first_aws_create(tmp_path: Path) -> None:
    """So a first apply killed at any point leaves a state, and the next run adopts by itself."""
    cloud = FakeCloud()
    eng = make(tmp_path, cloud)
    seen: list[object] = []
    kind = eng.kinds["aws_vpc"]
    create = kind.create

    def look_then_create(ctx: object, address: str, props: object) -> object:
        seen.append(LocalBackend(tmp_path, "dev-proton").read())
        return create(ctx, address, props)  # type: ignore[arg-type]

    kind.create = look_then_create  # type: ignore[method-assign,assignment]
    p = eng.plan()
    assert p.state_location == f"{tmp_path}/dev-proton.json (local)"
    assert eng.apply(p).ok
    (state,) = seen
    assert state is not None and state.serial >= 1  # type: ignore[attr-defined]
