"""PrivateLink (``network.private_link``) on moto: the endpoint service in front of the network load
balancer and its allowlist, one resource per principal — create, discover, a no-op plan, drift
both ways, import, destroy order, the refusal AWS gives while consumers are connected, the spec's
validation, the service name in the outputs and the plan JSON in the provider's schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from byoc.aws.context import AwsContext
from byoc.errors import CloudError, SpecError
from byoc.planner import PlanOptions
from byoc.resources.vpc_endpoint_service import KIND as SERVICE
from byoc.resources.vpc_endpoint_service_allowed_principal import KIND as PRINCIPAL
from byoc.spec import load_spec
from byoc.toolbox import state_rm
from tests.awsrealism import SNS_COUNTS, https_bucket_policies
from tests.daytwo import DEV, dev_spec, engine_for
from tests.test_checkov import CHECKOV

ACCOUNT = "arn:aws:iam::111122223333:root"
ROLE = "arn:aws:iam::444455556666:role/analytics/reader"
STRANGER = "arn:aws:iam::777788889999:root"
SVC = "aws_vpc_endpoint_service.main"


def principal_address(arn: str) -> str:
    return f'aws_vpc_endpoint_service_allowed_principal.main["{arn}"]'


def link(*principals: str, acceptance: bool = True) -> tuple[str, ...]:
    quoted = ", ".join(f'"{p}"' for p in principals)
    return ("load_balancer.type=network",
            f'network.private_link={{"allowed_principals": [{quoted}], '
            f'"acceptance_required": {str(acceptance).lower()}}}')


# -- the kinds alone ------------------------------------------------------------------------------


def make_nlb(ctx: AwsContext, name: str = "pl") -> str:
    ec2, elb = ctx.client("ec2"), ctx.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24", AvailabilityZone="us-west-2a")
    lb = elb.create_load_balancer(Name=name, Subnets=[subnet["Subnet"]["SubnetId"]], Type="network",
                                  Scheme="internal")
    return str(lb["LoadBalancers"][0]["LoadBalancerArn"])


def service_props(lb_arn: str, **over: Any) -> dict[str, Any]:
    tags = {"Name": "test-privatelink", "byoc:cluster": "test", "byoc:address": SVC}
    return {"network_load_balancer_arns": [lb_arn], "acceptance_required": True, "tags": tags, **over}


def record_calls(ctx: AwsContext, service: str = "ec2") -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def hook(model: Any, params: dict[str, Any], **kw: Any) -> None:
        calls.append((model.name, dict(params)))

    ctx.client(service).meta.events.register_first(f"before-parameter-build.{service}", hook)
    return calls


def test_service_is_created_with_its_tags_and_found_by_discovery(ctx: AwsContext) -> None:
    lb = make_nlb(ctx)
    calls = record_calls(ctx)
    live = SERVICE.create(ctx, SVC, service_props(lb))
    assert live.id.startswith("vpce-svc-") and live.address == SVC
    assert live.attrs["service_name"] == f"com.amazonaws.vpce.us-west-2.{live.id}"
    assert live.attrs["arn"] == f"arn:aws:ec2:us-west-2:123456789012:vpc-endpoint-service/{live.id}"
    [create] = [p for op, p in calls if op == "CreateVpcEndpointServiceConfiguration"]
    assert create["TagSpecifications"][0]["ResourceType"] == "vpc-endpoint-service"
    assert {"Key": "byoc:address", "Value": SVC} in create["TagSpecifications"][0]["Tags"]
    assert create["AcceptanceRequired"] is True and create["ClientToken"]
    assert not [op for op, _ in calls if op == "CreateTags"]  # tagged in the create call, not after
    assert SERVICE.discover(ctx) == [live]
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert SERVICE.discover(other) == []


def test_a_plan_without_private_link_reads_no_service_but_an_audit_finds_a_stray(ctx: AwsContext) -> None:
    live = SERVICE.create(ctx, SVC, service_props(make_nlb(ctx)))
    calls = record_calls(ctx)
    ctx.known = {"aws_vpc_endpoint_service": {}}  # neither spec nor state has one: a plain plan
    assert SERVICE.discover(ctx) == [] and PRINCIPAL.discover(ctx) == [] and calls == []
    ctx.known = {"aws_vpc_endpoint_service": {live.id: frozenset()}}  # the state has one
    assert SERVICE.discover(ctx) == [live]
    ctx.known = None  # drift, destroy, --delete-unmanaged: everything tagged for the cluster
    assert SERVICE.discover(ctx) == [live]


def test_a_second_create_after_a_crash_adopts_the_first(ctx: AwsContext) -> None:
    lb = make_nlb(ctx)
    first = SERVICE.create(ctx, SVC, service_props(lb))
    again = SERVICE.create(ctx, SVC, service_props(lb, acceptance_required=False))
    assert again.id == first.id and again.props["acceptance_required"] is False
    assert len(ctx.client("ec2").describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]) == 1


def test_acceptance_load_balancers_and_tags_change_in_place(ctx: AwsContext) -> None:
    lb, lb2 = make_nlb(ctx), make_nlb(ctx, "pl2")
    live = SERVICE.create(ctx, SVC, service_props(lb))
    want = service_props(lb2, acceptance_required=False,
                         tags={**service_props(lb)["tags"], "Owner": "data"})
    updated = SERVICE.update(ctx, live, want, {"acceptance_required", "network_load_balancer_arns", "tags"})
    assert updated.id == live.id
    [found] = SERVICE.discover(ctx)
    assert found.props == updated.props == {**want, "network_load_balancer_arns": [lb2]}
    assert "network_load_balancer_arns" in SERVICE.pins and not SERVICE.force_new


def connections_attached(ctx: AwsContext) -> None:
    """DeleteVpcEndpointServiceConfigurations as AWS answers it while an endpoint is connected
    (moto deletes anyway): the service is kept and named in ``Unsuccessful``."""

    def hook(params: dict[str, Any], **kw: Any) -> tuple[AWSResponse, dict[str, Any]]:
        sid = params["body"]["ServiceId.1"]  # the query protocol's request body
        return AWSResponse("https://ec2", 200, {}, None), {"Unsuccessful": [{"ResourceId": sid, "Error": {
            "Code": "ExistingVpcEndpointConnections",
            "Message": f"Service {sid} has existing active VPC Endpoint connections"}}]}

    ctx.client("ec2").meta.events.register_first(
        "before-call.ec2.DeleteVpcEndpointServiceConfigurations", hook)


def test_delete_with_consumers_connected_says_what_to_do_and_keeps_it(ctx: AwsContext) -> None:
    live = SERVICE.create(ctx, SVC, service_props(make_nlb(ctx)))
    connections_attached(ctx)
    with pytest.raises(CloudError) as err:
        SERVICE.delete(ctx, live)
    assert err.value.code == "ExistingVpcEndpointConnections" and err.value.aws_id == live.id
    assert "never deletes or rejects a consumer's endpoint" in str(err.value)
    assert f"reject-vpc-endpoint-connections --region us-west-2 --service-id {live.id}" in str(err.value)
    assert SERVICE.discover(ctx) == [live]


def test_delete_waits_until_gone_and_succeeds_when_already_gone(ctx: AwsContext) -> None:
    live = SERVICE.create(ctx, SVC, service_props(make_nlb(ctx)))
    SERVICE.delete(ctx, live)
    assert SERVICE.discover(ctx) == []
    SERVICE.delete(ctx, live)  # already gone: success


def test_principals_are_found_on_the_cluster_service_and_removed(ctx: AwsContext) -> None:
    svc = SERVICE.create(ctx, SVC, service_props(make_nlb(ctx)))
    props = {"vpc_endpoint_service_id": svc.id, "principal_arn": ROLE}
    live = PRINCIPAL.create(ctx, principal_address(ROLE), props)
    assert live.address == principal_address(ROLE) and live.id == f"{svc.id}/{ROLE}" and live.props == props
    assert PRINCIPAL.create(ctx, principal_address(ROLE), props) == live  # look before adding
    # one added by hand is found too, at its own address (the plan shows it as unmanaged)
    ctx.client("ec2").modify_vpc_endpoint_service_permissions(ServiceId=svc.id,
                                                              AddAllowedPrincipals=[STRANGER])
    found = {x.address for x in PRINCIPAL.discover(ctx)}
    assert found == {principal_address(ROLE), principal_address(STRANGER)}
    assert PRINCIPAL.read(ctx, live.id) == live
    PRINCIPAL.delete(ctx, live)
    assert [x.address for x in PRINCIPAL.discover(ctx)] == [principal_address(STRANGER)]
    SERVICE.delete(ctx, svc)
    PRINCIPAL.delete(ctx, live)  # its service is gone: so is it
    assert PRINCIPAL.discover(ctx) == []
    with pytest.raises(CloudError, match="added by `byoc apply`, nothing to import"):
        PRINCIPAL.claim(ctx, live.id, live.address)


def test_provider_values_are_the_provider_schema() -> None:
    from tests.test_provider_schema import _one

    values = {"network_load_balancer_arns": ["arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/net/x/1"],
              "acceptance_required": True, "tags": {"Name": "x"}}
    assert _one("aws_vpc_endpoint_service", SERVICE.provider_values(values)) == []
    principal = {"vpc_endpoint_service_id": "vpce-svc-1", "principal_arn": ACCOUNT}
    assert _one("aws_vpc_endpoint_service_allowed_principal", PRINCIPAL.provider_values(principal)) == []


# -- a cluster with PrivateLink -------------------------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path, monkeypatch: Any) -> Iterator[tuple[Any, list[str]]]:
    """The dev cluster with a network load balancer and PrivateLink for two principals, applied on
    moto; and the AWS operations every client makes from then on, in order."""
    from moto import mock_aws

    calls: list[str] = []

    def hook(event_name: str, **kw: Any) -> None:
        calls.append(event_name.split(".", 2)[2])

    with mock_aws():
        https_bucket_policies(monkeypatch)
        spec = dev_spec(*link(ACCOUNT, ROLE))
        ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01,
                         event_hooks=(*SNS_COUNTS, ("before-call", hook)))
        eng = engine_for(spec, ctx, tmp_path)
        result = eng.apply(eng.plan())
        assert result.ok, [str(f.error) for f in result.failures]
        calls.clear()
        yield eng, calls


def test_apply_then_plan_is_empty_and_the_output_is_the_service_name(linked: tuple[Any, list[str]]) -> None:
    eng, _ = linked
    state = eng.state()
    svc = state.resources[SVC]
    assert svc.props["acceptance_required"] is True
    lb = state.resources["aws_lb.main"]
    assert svc.props["network_load_balancer_arns"] == [lb.attrs["arn"]]
    assert {a for a in state.resources if a.startswith("aws_vpc_endpoint_service_allowed_principal")} == {
        principal_address(ACCOUNT), principal_address(ROLE)}
    assert state.outputs["private_link_service_name"] == f"com.amazonaws.vpce.us-west-2.{svc.id}"
    plan = eng.plan()
    assert plan.actionable == () and plan.unmanaged == ()
    assert eng.drift().in_sync


def test_a_principal_added_outside_is_unmanaged_one_removed_is_put_back(
        linked: tuple[Any, list[str]]) -> None:
    eng, _ = linked
    ec2 = eng.ctx.client("ec2")
    sid = eng.state().resources[SVC].id
    ec2.modify_vpc_endpoint_service_permissions(ServiceId=sid, AddAllowedPrincipals=[STRANGER],
                                                RemoveAllowedPrincipals=[ROLE])
    drift = {d.address: d.status for d in eng.drift().resources}
    assert drift == {principal_address(STRANGER): "unmanaged", principal_address(ROLE): "missing"}
    plan = eng.plan()
    assert plan.unmanaged == (principal_address(STRANGER),)
    [change] = plan.actionable
    assert change.address == principal_address(ROLE) and change.action == "create"
    assert "deleted outside byoc" in change.reason
    assert eng.apply(plan).ok
    allowed = {p["Principal"] for p in ec2.describe_vpc_endpoint_service_permissions(ServiceId=sid)[
        "AllowedPrincipals"]}
    assert allowed == {ACCOUNT, ROLE, STRANGER}  # the stranger stays until --delete-unmanaged
    cleanup = eng.plan(PlanOptions(delete_unmanaged=True))
    assert [(c.address, c.action) for c in cleanup.actionable] == [(principal_address(STRANGER), "delete")]
    assert eng.apply(cleanup).ok
    assert eng.plan().actionable == () and eng.drift().in_sync


def test_import_of_the_service_and_a_principal(linked: tuple[Any, list[str]]) -> None:
    eng, _ = linked
    sid = eng.state().resources[SVC].id
    ec2 = eng.ctx.client("ec2")
    state_rm(eng, [SVC, principal_address(ACCOUNT)])
    ec2.delete_tags(Resources=[sid], Tags=[{"Key": "byoc:cluster"}, {"Key": "byoc:address"}])
    record = eng.import_resource(SVC, sid)  # claimed: tagged as the cluster's again
    assert record.id == sid and record.props["acceptance_required"] is True
    principal = eng.import_resource(principal_address(ACCOUNT), f"{sid}/{ACCOUNT}")
    assert principal.props == {"vpc_endpoint_service_id": sid, "principal_arn": ACCOUNT}
    assert eng.plan().actionable == ()


def test_acceptance_changes_in_place(linked: tuple[Any, list[str]], tmp_path: Path) -> None:
    eng, calls = linked
    spec = dev_spec(*link(ACCOUNT, ROLE, acceptance=False))
    eng2 = engine_for(spec, eng.ctx, tmp_path)
    plan = eng2.plan()
    assert [(c.address, c.action) for c in plan.actionable] == [(SVC, "update")]
    assert eng2.apply(plan).ok
    assert "ModifyVpcEndpointServiceConfiguration" in calls
    assert "CreateVpcEndpointServiceConfiguration" not in calls
    assert eng2.plan().actionable == ()


def test_destroy_removes_the_allowlist_then_the_service_then_the_load_balancer(
        linked: tuple[Any, list[str]]) -> None:
    eng, calls = linked
    result = eng.apply(eng.plan(PlanOptions(destroy=True)))
    assert not [f for f in result.failures]
    removes = [i for i, op in enumerate(calls) if op == "ModifyVpcEndpointServicePermissions"]
    delete_svc = calls.index("DeleteVpcEndpointServiceConfigurations")
    delete_lb = calls.index("DeleteLoadBalancer")
    assert len(removes) == 2 and max(removes) < delete_svc < delete_lb
    assert eng.ctx.client("ec2").describe_vpc_endpoint_service_configurations()["ServiceConfigurations"] == []


def test_destroy_with_consumers_connected_stops_before_the_load_balancer(
        linked: tuple[Any, list[str]]) -> None:
    eng, calls = linked
    connections_attached(eng.ctx)
    result = eng.apply(eng.plan(PlanOptions(destroy=True)))
    errors = [str(f.error) for f in result.failures]
    assert len(errors) == 1 and "reject-vpc-endpoint-connections" in errors[0]
    assert "DeleteLoadBalancer" not in calls  # the load balancer behind it is kept, not orphaned
    assert SVC in eng.state().resources


# -- the spec ------------------------------------------------------------------------------------


def spec_error(*overrides: str) -> str:
    with pytest.raises(SpecError) as err:
        load_spec(str(DEV), overrides)
    return str(err.value)


def test_private_link_needs_a_network_load_balancer() -> None:
    text = spec_error(*link(ACCOUNT)[1:])  # the dev spec's application load balancer
    assert "network.private_link" in text and "load_balancer.type is application" in text
    assert "set load_balancer.type: network" in text


@pytest.mark.parametrize(("principal", "expected"), [
    ("*", "'*', any account, is not accepted"),
    ("123456789012", "an IAM ARN of an account, role or user"),
    ("arn:aws:iam::123456789012:group/admins", "an IAM ARN of an account, role or user"),
    ("arn:aws-cn:iam::123456789012:root", "is not in the aws partition of us-west-2"),
])
def test_principals_are_validated(principal: str, expected: str) -> None:
    text = spec_error(*link(principal))
    assert "network.private_link.allowed_principals[0]" in text and expected in text


def test_no_principal_and_a_public_load_balancer() -> None:
    text = spec_error("load_balancer.type=network", 'network.private_link={"allowed_principals": []}')
    assert "network.private_link.allowed_principals" in text
    spec = load_spec(str(DEV), (*link(ACCOUNT), "network.public_access=true"))
    assert any("network.public_access is on" in w and "PrivateLink" in w for w in spec.warnings)
    spec = load_spec(str(DEV), (*link(ACCOUNT), "network.allowed_cidrs=[]"))
    assert any("no consumer can connect" in w for w in spec.warnings)
    assert load_spec(str(DEV), link(ACCOUNT)).warnings == ()


def test_plan_json_of_private_link_matches_the_provider_schema() -> None:
    from byoc.plan import Plan
    from tests.test_golden import World
    from tests.test_provider_schema import plan_problems, rendered

    plan: Plan = World().plan("tests/data/every-option-network.yaml")
    data = rendered(plan)
    assert plan_problems(data) == []
    [svc] = [rc for rc in data["resource_changes"] if rc["type"] == "aws_vpc_endpoint_service"]
    assert svc["change"]["after"]["acceptance_required"] is True
    assert svc["change"]["after_unknown"]["network_load_balancer_arns"] is True
    principals = [rc for rc in data["resource_changes"]
                  if rc["type"] == "aws_vpc_endpoint_service_allowed_principal"]
    assert sorted(rc["index"] for rc in principals) == sorted(
        ["arn:aws:iam::123456789012:root", "arn:aws:iam::210987654321:role/proton-consumer"])


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed: run `make checkov-venv`")
def test_checkov_wants_manual_acceptance_and_finds_nothing_else_on_private_link(tmp_path: Path) -> None:
    """CKV_AWS_123 (manual acceptance) passes byoc's default and fails ``acceptance_required:
    false``; no other check fails on the PrivateLink resources of the prod spec."""

    from byoc.render import render_plan_json
    from byoc.resources import shaper
    from tests.test_golden import World

    world = World()
    for name, acceptance in (("accepting", True), ("open", False)):
        plan = world.plan("specs/prod.yaml", link(ACCOUNT, acceptance=acceptance))
        (tmp_path / f"{name}.json").write_text(render_plan_json(plan, shaper()))
    run = subprocess.run([str(CHECKOV), "-d", str(tmp_path), "--framework", "terraform_plan",
                          "--skip-download", "-o", "json"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = json.loads(run.stdout)
    failed, passed = ({(Path(c["file_path"]).stem, c["check_id"], c["resource"])
                       for c in report["results"][key]} for key in ("failed_checks", "passed_checks"))
    assert ("accepting", "CKV_AWS_123", SVC) in passed
    assert ("open", "CKV_AWS_123", SVC) in failed
    assert {f for f in failed if "vpc_endpoint_service" in f[2]} == {("open", "CKV_AWS_123", SVC)}


def test_replacing_the_load_balancer_replaces_the_service_first(linked: tuple[Any, list[str]],
                                                                 tmp_path: Path) -> None:
    eng, _ = linked
    old = eng.state().outputs["private_link_service_name"]
    spec = dev_spec(*link(ACCOUNT, ROLE), "network.public_access=true")
    public = engine_for(spec, eng.ctx, tmp_path)  # the same state directory as the fixture's
    plan = public.plan()
    actions = {c.address: c.action for c in plan.actionable}
    assert actions["aws_lb.main"] == actions[SVC] == "replace"
    assert actions[principal_address(ACCOUNT)] == "replace"  # its service's id changes
    result = public.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    new = public.state().outputs["private_link_service_name"]
    assert new != old and public.plan().actionable == ()


def test_cli_end_to_end_output_drift_and_a_bad_spec(server: Any, work: Path) -> None:
    """The real CLI against the moto server: apply, `byoc output -raw` gives the service name,
    a principal added by hand makes `byoc drift` exit 2, validation names the field."""

    from tests.motoserver import MotoServer

    assert isinstance(server, MotoServer)
    server.reset()
    env = server.env()
    sets = [arg for s in link(ACCOUNT) for arg in ("--set", s)]

    def byoc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "byoc", *args], env=env, cwd=work,
                              capture_output=True, text=True, timeout=300)

    bad = byoc("validate", "specs/dev.yaml", "--set", link(ACCOUNT)[1])
    assert bad.returncode == 1 and "network.private_link" in bad.stderr and "Traceback" not in bad.stderr
    assert "load_balancer.type is application" in bad.stderr
    p = byoc("apply", "specs/dev.yaml", *sets, "--auto-approve")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "aws_vpc_endpoint_service.main: Creation complete" in p.stdout
    p = byoc("output", "specs/dev.yaml", *sets, "private_link_service_name", "-raw")
    assert p.returncode == 0 and p.stdout.startswith("com.amazonaws.vpce.us-west-2.vpce-svc-"), p.stderr
    sid = p.stdout.rsplit(".", 1)[1]
    server.client("ec2").modify_vpc_endpoint_service_permissions(ServiceId=sid,
                                                                 AddAllowedPrincipals=[STRANGER])
    p = byoc("drift", "specs/dev.yaml", *sets, "--json")
    assert p.returncode == 2, p.stdout + p.stderr
    assert json.dumps(principal_address(STRANGER)) in p.stdout  # as JSON quotes it
    p = byoc("destroy", "specs/dev.yaml", *sets, "--auto-approve")
    assert p.returncode == 0, p.stdout + p.stderr
    assert server.client("ec2").describe_vpc_endpoint_service_configurations()["ServiceConfigurations"] == []
