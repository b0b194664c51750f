"""`byoc iam-policy`: the deployer policy for each use of a spec, proven on moto.

The lifecycle test runs a dev cluster's whole life on moto (apply, no-op plan, drift, scale up and
down, backup, restore, a rolling replacement, health, logs, metrics, query, rotate-password, backups
list and prune, destroy without and with data), records every AWS call byoc makes under the use it
belongs to, and checks each call's IAM action against the policy generated for that use with
moto's own IAM evaluator (``moto.iam.access_control.IAMPolicy.is_action_permitted``). What is
evaluated: Effect and Action (with wildcards), allow and unconditional deny. What is not: Resource
(the recorder keeps actions, so each statement is evaluated on "*": the ARN scoping is checked by
the unit tests below, not against the calls) and Conditions (moto ignores them: tag conditions and
``iam:PermissionsBoundary`` are checked by parliament and the unit tests, conditioned denies are
left out of the evaluation).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from byoc.api import Cluster
from byoc.aws.calls import CallRecorder
from byoc.aws.context import AwsContext
from byoc.cli import main
from byoc.engine import Engine, backend_for
from byoc.iampolicy import (
    READ_ONLY_ACTIONS,
    READ_ONLY_PREFIXES,
    USES,
    DeployerPolicy,
    boundary_document,
    deployer_policy,
    iam_action,
    policy_size,
)
from byoc.operations.preflight import run_preflight
from byoc.operations.upgrading import upgrade_steps
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import TargetHealth, free_eips_of_deleted_nat_gateways, https_bucket_policies
from tests.daytwo import AMI, DEV, ROOT, quiet_ctx
from tests.nodeshell import Answer, NodeShell, proton_version
from tests.test_rotate import SELECT_1

PROD = ROOT / "specs/prod.yaml"
BUMP = "cluster.proton_version=1.6.17"


ACCOUNT, REGION = "123456789012", "us-west-2"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/byoc-dev-proton-boundary"
STATE_BUCKET = "acme-byoc-state"
#: the use of the test's own calls (not byoc's): not checked
SETUP = "setup"
#: `byoc health`'s calls, checked against the cross-account role too
HEALTH = "health"
#: the lifecycle's cluster: two nodes, remote state, roles bounded
LIFECYCLE = (
    "compute.instance_count=2",
    "state.backend=s3",
    f"state.bucket={STATE_BUCKET}",
    f"security.permissions_boundary_arn={BOUNDARY}",
)


def _arn(service: str, op: str, params: dict[str, Any], cluster: str) -> str:
    """The ARN an IAM policy sees for a call, from its parameters, where it can be told ("*" else)."""
    p = params
    first = next((p[k][0] for k in ("AlarmNames", "DashboardNames", "ResourceArns") if p.get(k)), None)
    if service == "s3" and "Bucket" in p:
        key = p.get("Key") or ("x" if op in ("DeleteObjects",) else None)
        return f"arn:aws:s3:::{p['Bucket']}" + (f"/{key}" if key else "")
    if service == "iam":
        if "RoleName" in p:
            return f"arn:aws:iam::{ACCOUNT}:role/byoc/{cluster}/{p['RoleName']}"
        if "InstanceProfileName" in p:
            return f"arn:aws:iam::{ACCOUNT}:instance-profile/byoc/{cluster}/{p['InstanceProfileName']}"
    if service == "logs" and "logGroupName" in p:
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{p['logGroupName']}"
    if service == "logs" and "resourceArn" in p:
        return str(p["resourceArn"])
    if service == "secretsmanager" and ("SecretId" in p or "Name" in p):
        name = str(p.get("SecretId") or p["Name"])
        return (
            name
            if name.startswith("arn:")
            else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
        )
    if service == "sns" and ("TopicArn" in p or "ResourceArn" in p or op == "CreateTopic"):
        return str(p.get("TopicArn") or p.get("ResourceArn") or f"arn:aws:sns:{REGION}:{ACCOUNT}:{p['Name']}")
    if service == "monitoring" and (first or "AlarmName" in p or "DashboardName" in p or "ResourceARN" in p):
        if "DashboardName" in p or op == "DeleteDashboards":
            return f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{p.get('DashboardName') or first}"
        return str(
            p.get("ResourceARN")
            or f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{p.get('AlarmName') or first}"
        )
    if service == "elasticloadbalancing":
        given = next((p[k] for k in ("ListenerArn", "TargetGroupArn", "LoadBalancerArn") if k in p), first)
        if op == "CreateListener":
            return str(given).replace(":loadbalancer/", ":listener/") + "/0123456789abcdef"
        if given:
            return str(given)
        kind = {"CreateLoadBalancer": "loadbalancer/app", "CreateTargetGroup": "targetgroup"}.get(op)
        if kind:
            return f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:{kind}/{p['Name']}/0123456789abcdef"
    if service == "ssm" and op == "GetParameter":
        return f"arn:aws:ssm:{REGION}::parameter{p['Name']}"
    if service == "dynamodb" and "TableName" in p:
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{p['TableName']}"
    return "*"  # EC2, KMS, SSM and the Describe/List calls: tag-scoped or "*" (conditions not evaluated)


class Recorder:
    """Every AWS call byoc makes — its IAM action and, where the parameters tell, its resource's
    ARN — under the use it is made for (botocore's ``before-parameter-build`` on every client)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.use = "apply"
        self.calls: dict[str, set[tuple[str, str]]] = defaultdict(set)

    @contextmanager
    def using(self, use: str) -> Iterator[None]:
        before, self.use = self.use, use
        try:
            yield
        finally:
            self.use = before

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        arn = _arn(service, model.name, params, self.cluster)
        self.calls[self.use].add((iam_action(service, model.name), arn))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Recorder:
        original = CallRecorder.register

        def register(this: CallRecorder, client: Any) -> None:
            original(this, client)
            client.meta.events.register("before-parameter-build", self._record)

        monkeypatch.setattr(CallRecorder, "register", register)
        return self


def _permitted(policy: DeployerPolicy, action: str, arn: str = "*") -> bool:
    """moto's evaluator over every document of the policy: allowed by one, denied by none."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = [
        IAMPolicy(json.dumps(_evaluated(doc, arn))).is_action_permitted(action, arn)
        for doc in policy.documents
    ]
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


def _nodes(iid: str, script: str) -> Answer:
    """What the nodes answer: Proton 1.6.17, a password rotation that works, else success."""
    if "bash -s -- --status" in script:
        return Answer(stdout="none\n")
    if "--install --version-id" in script:
        return Answer(stdout="byoc-proton-password: the new password logs in\n")
    version = proton_version("1.6.17")(iid, script)
    if version.stdout:
        return version
    return (
        Answer(stdout=SELECT_1) if "get-secret-value" in script and "127.0.0.1:8123" in script else Answer()
    )


def _evaluated(doc: dict[str, Any], arn: str) -> dict[str, Any]:
    """The document as moto evaluates it here: Conditions left out (moto evaluates StringEquals
    only, on values the caller passes) and so a Deny with a Condition too (it would deny outright
    what it denies for another boundary only); for a call whose ARN is unknown ("*"), every
    statement on Resource "*" (only the action is checked)."""
    return {
        **doc,
        "Statement": [
            {**{k: v for k, v in st.items() if k != "Condition"}, **({"Resource": "*"} if arn == "*" else {})}
            for st in doc["Statement"]
            if not (st["Effect"] == "Deny" and "Condition" in st)
        ],
    }


def _management_policy(spec: Any) -> dict[str, Any]:
    """The inline policy of the read-only role ``security.cross_account_role`` makes."""
    from byoc.blueprint import build

    xacct = "security.cross_account_role={provider_account_id: '111122223333', external_id: byoc-ext-123}"
    with_role = load_spec(str(spec.source), (*LIFECYCLE, xacct))
    (role,) = [r for r in build(with_role) if r.address == "aws_iam_role.management"]
    return dict(role.props["inline_policies"]["proton-operations"])


def _allows(doc: dict[str, Any], action: str) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    return bool(
        IAMPolicy(json.dumps(_evaluated(doc, "*"))).is_action_permitted(action, "*")
        == PermissionResult.PERMITTED
    )


def _apply_plan_drift(rec: Recorder, c: Cluster) -> None:
    """Apply, then a plan that is empty and a drift that is in sync, each under its use."""
    with rec.using("apply"):
        assert c.apply().ok
    with rec.using("plan"):
        assert not c.plan().has_changes
        run_preflight(c.engine.ctx, c.spec)  # `byoc preflight`, and `byoc apply` before it changes anything
        _lookup_ami(c)
    with rec.using("drift"):
        assert c.drift().in_sync


def _lookup_ami(c: Cluster) -> None:
    """The AMI lookup of a spec without compute.ami (the tests pass an ami_resolver): its public
    SSM parameter, which moto may not hold (the call is made and recorded either way)."""
    from byoc.errors import CloudError
    from byoc.resources.ami import resolve_ami

    with contextlib.suppress(CloudError):
        resolve_ami(c.engine.ctx, c.spec.data["compute"]["instance_type"])


def _boundary_of(iam: Any, role: str) -> str | None:
    return iam.get_role(RoleName=role)["Role"].get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")


def _lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[tuple[str, str]]]:
    https_bucket_policies(monkeypatch)
    spec = load_spec(str(DEV), LIFECYCLE)
    rec = Recorder(spec.cluster_name).install(monkeypatch)
    ctx = quiet_ctx(spec)
    # the boundary as the user creates it from `byoc iam-policy` (moto validates the document)
    iam, s3 = ctx.client("iam"), ctx.client("s3")
    with rec.using(SETUP):
        boundary = json.dumps(boundary_document(spec))
        iam.create_policy(PolicyName="byoc-dev-proton-boundary", PolicyDocument=boundary)
        s3.create_bucket(Bucket=STATE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    NodeShell(_nodes).install(ctx.client("ssm"))
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    TargetHealth(ctx.client("elbv2"), draining=1, initial=1)
    backend = backend_for(spec)
    options: dict[str, Any] = {"ctx": ctx, "backend": backend, "ami_resolver": lambda itype: AMI}
    c = Cluster(spec, **options)
    _apply_plan_drift(rec, c)
    # the roles carry the boundary; one lifted by hand is drift, and apply puts it back
    with rec.using(SETUP):
        assert _boundary_of(iam, "dev-proton-node") == BOUNDARY
        iam.delete_role_permissions_boundary(RoleName="dev-proton-node")
    with rec.using("drift"):
        assert [r.address for r in c.drift().resources] == ["aws_iam_role.node"]
    with rec.using("apply"):
        assert c.apply().ok
    with rec.using(SETUP):
        assert _boundary_of(iam, "dev-proton-node") == BOUNDARY
    with rec.using("ops"):
        with rec.using(HEALTH):
            assert c.health().status == "healthy"
        c.logs(since="1h")
        c.metrics(since="1h")
        assert c.query("SELECT version()").ok
        backup = c.backup()
        assert [b.backup_id for b in c.backups()] == [backup.backup_id]
        assert c.restore(backup.backup_id).ok
        c.rotate_password()
        assert c.prune_backups(now=0).removed == []
        assert c.scale(3, update_spec=False).result.ok
        assert c.scale(2, update_spec=False).result.ok
    with rec.using("apply"):  # a rolling replacement: a Proton version bump
        bumped = load_spec(str(DEV), (*LIFECYCLE, BUMP))
        eng = Engine(bumped, health_timeout=0.3, **options)
        eng.upgrade_steps = upgrade_steps(eng)
        assert eng.apply(eng.plan()).ok
        c = Cluster(bumped, **options)
        assert c.destroy().ok
        assert c.destroy(include_data=True).ok
    rec.calls.pop(SETUP, None)
    return rec.calls


def test_every_call_of_the_lifecycle_is_allowed_by_the_policy_for_its_use(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _lifecycle(tmp_path, monkeypatch)
    assert set(calls) == {"apply", "plan", "drift", "ops", HEALTH}
    spec = load_spec(str(DEV), LIFECYCLE)
    # health is day 2 (--for ops), and the provider's read-only role is enough for it
    health = calls.pop(HEALTH)
    calls["ops"] |= health
    management = _management_policy(spec)
    # the state read is not the role's (the provider keeps the state where it can read it)
    state = {(a, arn) for a, arn in health if arn.startswith(f"arn:aws:s3:::{STATE_BUCKET}/")}
    assert state and {a for a, _ in health - state} == {
        "ec2:DescribeInstanceStatus",
        "elasticloadbalancing:DescribeTargetHealth",
    }
    assert all(_allows(management, a) for a, _ in health - state)
    # ... and for drift too: the role reads what discovery reads (blueprint/iam.py, DRIFT_READ)
    lacking = sorted({a for a, _ in calls["drift"] if not _allows(management, a)})
    assert not lacking, lacking
    for use, recorded in calls.items():
        policy = deployer_policy(spec, use)
        missing = sorted(f"{a} on {arn}" for a, arn in recorded if not _permitted(policy, a, arn))
        assert not missing, f"--for {use} lacks {missing}"
    apply = {a for a, _ in calls["apply"]}
    assert len(apply) > 100 and {"iam:CreateRole", "ec2:RunInstances", "s3:PutObject"} <= apply
    scoped = {arn for _, arn in calls["apply"] if arn != "*"}
    assert f"arn:aws:s3:::{STATE_BUCKET}/byoc/dev-proton/state.json" in scoped
    assert "arn:aws:iam::123456789012:role/byoc/dev-proton/dev-proton-node" in scoped
    assert any(arn.startswith("arn:aws:ssm:us-west-2::parameter/aws/service/") for _, arn in calls["plan"])
    assert {"sts:GetCallerIdentity", "servicequotas:GetServiceQuota"} <= {a for a, _ in calls["plan"]}
    # and the evaluator does refuse: an action byoc never calls is not allowed by any use
    for use in USES:
        assert not _permitted(deployer_policy(spec, use), "iam:CreateUser")
        assert not _permitted(deployer_policy(spec, use), "ec2:DeleteRolePermissionsBoundary")
    # the read-only uses do not allow what apply needs
    assert not _permitted(deployer_policy(spec, "plan"), "ec2:RunInstances")
    assert not _permitted(deployer_policy(spec, "drift"), "iam:CreateRole")


def _all_actions(policy: DeployerPolicy) -> set[str]:
    return {
        a for doc in policy.documents for s in doc["Statement"] if s["Effect"] == "Allow" for a in s["Action"]
    }


def test_the_prod_cluster_with_its_key_and_replication_needs_nothing_more(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """specs/prod.yaml (its own KMS key, flow logs, three NAT gateways, S3 events) with replication:
    apply, a no-op plan, drift, destroy with data, each call checked against its use's policy."""
    import boto3

    from tests.test_cluster_moto import DR_BUCKET, REPLICATION

    overrides = (REPLICATION, f"security.permissions_boundary_arn={BOUNDARY.replace('dev-proton', 'prod')}")
    spec = load_spec(str(PROD), overrides)
    rec = Recorder(spec.cluster_name).install(monkeypatch)
    dr = boto3.client("s3", region_name="us-east-1")  # the user's bucket in another region (not byoc's)
    dr.create_bucket(Bucket=DR_BUCKET)
    dr.put_bucket_versioning(Bucket=DR_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01)
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    c = Cluster(spec, ctx=ctx, backend=LocalBackend(tmp_path, spec.cluster_name), ami_resolver=lambda i: AMI)
    _apply_plan_drift(rec, c)
    with rec.using("apply"):
        assert c.destroy(include_data=True).ok
    assert {a for a, _ in rec.calls["apply"]} >= {
        "kms:CreateKey",
        "s3:PutReplicationConfiguration",
        "ec2:CreateFlowLogs",
    }
    for use, recorded in rec.calls.items():
        policy = deployer_policy(spec, use)
        missing = sorted(f"{a} on {arn}" for a, arn in recorded if not _permitted(policy, a, arn))
        assert not missing, f"--for {use} lacks {missing}"


def test_privatelink_needs_nothing_more(moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network load balancer with PrivateLink (tests/data/every-option-network.yaml): apply, a
    no-op plan, drift, destroy, each call checked against its use's policy."""
    no_certificate = ["load_balancer.certificate_arn=null"]  # moto knows no such certificate
    spec = load_spec(str(ROOT / "tests/data/every-option-network.yaml"), no_certificate)
    rec = Recorder(spec.cluster_name).install(monkeypatch)
    https_bucket_policies(monkeypatch)
    ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01)
    c = Cluster(spec, ctx=ctx, backend=LocalBackend(tmp_path, spec.cluster_name), ami_resolver=lambda i: AMI)
    _apply_plan_drift(rec, c)
    with rec.using("apply"):
        assert c.destroy(include_data=True).ok
    assert "ec2:CreateVpcEndpointServiceConfiguration" in {a for a, _ in rec.calls["apply"]}
    for use, recorded in rec.calls.items():
        policy = deployer_policy(spec, use)
        missing = sorted(f"{a} on {arn}" for a, arn in recorded if not _permitted(policy, a, arn))
        assert not missing, f"--for {use} lacks {missing}"


@pytest.mark.parametrize("use", ["plan", "drift"])
@pytest.mark.parametrize("spec_file", [DEV, PROD])
def test_plan_and_drift_policies_change_nothing(use: str, spec_file: Path) -> None:
    actions = _all_actions(deployer_policy(load_spec(str(spec_file)), use))
    assert actions
    changing = sorted(
        a
        for a in actions
        if not a.split(":")[1].startswith(READ_ONLY_PREFIXES) and a not in READ_ONLY_ACTIONS
    )
    assert not changing
    # and by a list: none of the actions that change things that byoc's other uses need
    apply = _all_actions(deployer_policy(load_spec(str(spec_file)), "apply"))
    writes = {
        a
        for a in apply
        if re.search(
            r":(Create|Delete|Put|Modify|Run|Terminate|Update|Tag|Untag|"
            r"Attach|Detach|Authorize|Revoke|Associate|Disassociate|"
            r"Allocate|Release|Register|Deregister|Start|Stop|Set|"
            r"Schedule|Enable|Disable|Replace|Send)",
            a,
        )
    }
    assert writes and not (actions & writes)
    # and by a list written here: what would change the cluster or read its secrets
    assert not actions & {
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:CreateTags",
        "ec2:DeleteVolume",
        "ec2:CreateSnapshot",
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:PassRole",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteBucket",
        "s3:PutBucketPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:Decrypt",
        "kms:PutKeyPolicy",
        "ssm:SendCommand",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "elasticloadbalancing:DeleteLoadBalancer",
        "logs:DeleteLogGroup",
        "cloudwatch:PutMetricAlarm",
        "sns:Subscribe",
        "dynamodb:PutItem",
    }


def test_the_roles_byoc_creates_are_bounded_and_the_deployer_cannot_lift_it() -> None:
    spec = load_spec(str(PROD))
    policy = deployer_policy(spec, "apply")
    statements = [s for doc in policy.documents for s in doc["Statement"]]
    creates = [
        s
        for s in statements
        if s["Effect"] == "Allow" and {"iam:CreateRole", "iam:PutRolePolicy"} & set(s["Action"])
    ]
    assert creates and all(
        s["Condition"]["ArnLike"]["iam:PermissionsBoundary"] == [policy.boundary_arn] for s in creates
    )
    denied = {a for s in statements if s["Effect"] == "Deny" for a in s["Action"]}
    assert {"iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"} <= denied
    # the boundary allows what the roles byoc makes do, and nothing of IAM
    boundary = json.dumps(boundary_document(spec))
    for action in (
        "s3:PutObject",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
        "ssmmessages:OpenDataChannel",
        "cloudwatch:PutMetricData",
    ):
        assert action in boundary
    # byoc's roles may read IAM (the cross-account role's drift reads) but never change it
    assert all(a.startswith(("Get", "List")) for a in re.findall(r'"iam:([A-Za-z*]+)"', boundary))
    # the spec's ARN, when given, is the one the policy names
    arn = "arn:aws:iam::123456789012:policy/custom-boundary"
    given = load_spec(str(PROD), (f"security.permissions_boundary_arn={arn}",))
    assert deployer_policy(given, "apply").boundary_arn == arn


@pytest.mark.parametrize("spec_file", [DEV, PROD])
def test_every_document_fits_the_managed_policy_size(spec_file: Path) -> None:
    for use in USES:
        policy = deployer_policy(load_spec(str(spec_file)), use)
        assert all(policy_size(doc) <= 6144 for doc in policy.documents)
        names = [n for n, _ in policy.named()]
        assert len(set(names)) == len(names)


def test_resources_are_scoped_by_the_clusters_names() -> None:
    spec = load_spec(str(PROD))
    text = json.dumps(deployer_policy(spec, "apply").documents)
    assert "arn:aws:s3:::my-company-proton-data" in text
    assert "role/byoc/production-proton/" in text
    assert "log-group:/aws/proton/production-proton" in text
    assert "secret:byoc/production-proton/" in text
    assert "aws:ResourceTag/byoc:cluster" in text and "aws:RequestTag/byoc:cluster" in text
    remote = load_spec(str(PROD), ("state.backend=s3", "state.bucket=acme-byoc-state"))
    assert "arn:aws:s3:::acme-byoc-state/byoc/production-proton/state.json" in json.dumps(
        deployer_policy(remote, "plan").documents
    )


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["iam-policy", str(PROD), *args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_cli_formats(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(["--for", "drift", "--format", "json"], capsys)
    doc = json.loads(out)
    assert (
        code == 0 and doc["use"] == "drift" and doc["policies"] and doc["boundary"]["document"]["Statement"]
    )
    code, out, err = _cli(["--format", "cloudformation"], capsys)
    template = json.loads(out)
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert code == 0 and kinds == {"AWS::IAM::ManagedPolicy"} and len(template["Resources"]) >= 2
    assert "${Boundary}" in json.dumps(template) and "security.permissions_boundary_arn" in err
    code, out, err = _cli(["--for", "ops", "--format", "terraform"], capsys)
    assert code == 0 and 'resource "aws_iam_policy" "boundary"' in out and "jsonencode(" in out
    assert "${aws_iam_policy.boundary.arn}" in out
    code, out, err = _cli(["--for", "nonsense"], capsys)
    assert code == 1 and "--for must be one of plan, drift, apply, ops" in err and "Traceback" not in err


def test_the_api_gives_the_same_policy() -> None:
    from byoc.errors import ByocError

    c = Cluster.from_spec(PROD)
    assert c.iam_policy("drift").documents == deployer_policy(load_spec(str(PROD)), "drift").documents
    with pytest.raises(ByocError, match="--for must be one of"):
        c.iam_policy("everything")


def test_the_plan_json_carries_the_boundary_in_the_providers_shape() -> None:
    from byoc.blueprint import build
    from byoc.resources import shaper

    spec = load_spec(str(DEV), (f"security.permissions_boundary_arn={BOUNDARY}",))
    roles = [r for r in build(spec) if r.kind == "aws_iam_role"]
    assert {r.address for r in roles} == {"aws_iam_role.node", "aws_iam_role.flow_logs"}
    assert all(r.props["permissions_boundary"] == BOUNDARY for r in roles)
    kept = {"name": "x", "permissions_boundary": BOUNDARY}
    assert shaper().values("aws_iam_role", kept)["permissions_boundary"] == BOUNDARY
    assert all(
        "permissions_boundary" not in r.props for r in build(load_spec(str(DEV))) if r.kind == "aws_iam_role"
    )


def test_parliament_finds_nothing_above_low() -> None:
    try:
        import parliament  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"parliament is not installed ({exc}): pip install -e '.[test]'")
    script = (
        "import json, sys\n"
        "from parliament import analyze_policy_string, enhance_finding\n"
        "bad = []\n"
        "def known(f):\n"
        "    # RunInstances on the AMI (untagged, not the cluster's) is its own statement, AWS's pattern\n"
        "    # for tag-scoped RunInstances; parliament wants every resource type of it in each statement\n"
        "    acts = {d['action'] for d in f.detail}\n"
        "    return f.issue == 'RESOURCE_MISMATCH' and acts == {'ec2:RunInstances'}\n"
        "for text in json.load(sys.stdin):\n"
        "    for f in map(enhance_finding, analyze_policy_string(text).findings):\n"
        "        if f.severity not in ('LOW', 'INFO', 'MUTE') and not known(f):\n"
        "            bad.append([f.issue, f.severity, str(f.detail), str(f.location)])\n"
        "print(json.dumps(bad))\n"
    )
    docs = []
    for spec_file in (DEV, PROD):
        spec = load_spec(str(spec_file))
        docs.append(json.dumps(boundary_document(spec)))
        for use in USES:
            docs += [json.dumps(d) for d in deployer_policy(spec, use).documents]
    run = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(docs), capture_output=True, text=True, check=True
    )
    assert json.loads(run.stdout) == []


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("arn:aws-cn:iam::123456789012:policy/b", "partition 'aws-cn', but region us-west-2 is in 'aws'"),
        ("arn:aws:iam::123456789012:role/b", "permissions_boundary_arn"),
    ],
)
def test_a_boundary_arn_that_cannot_be_is_refused_naming_the_field(arn: str, message: str) -> None:
    from byoc.errors import SpecError

    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(str(DEV), (f"security.permissions_boundary_arn={arn}",))


def test_the_security_doc_shows_the_prod_apply_policy_as_generated() -> None:
    doc = (ROOT / "docs/security.md").read_text()
    section = doc[doc.index("### The policy for `specs/prod.yaml`, `--for apply`") :]
    section = section[: section.index("\n### ")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    statements = [s for d in deployer_policy(load_spec(str(PROD)), "apply").documents for s in d["Statement"]]
    assert len(rows) == len(statements)
    for row, st in zip(rows, statements, strict=True):
        assert f"`{st['Sid']}`" in row and all(f"`{a}`" in row for a in st["Action"]), st["Sid"]


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("security.cross_account_role={provider_account_id: '111122223333', external_id: byoc-ext-123}",),
        (
            "security.encryption.create_kms_key=false",
            "security.encryption.kms_key_arn=arn:aws:kms:us-west-2:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab",
        ),
    ],
)
def test_the_boundary_allows_every_action_of_every_role_byoc_creates(overrides: tuple[str, ...]) -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    from byoc.blueprint import build
    from tests.test_cluster_moto import DR_KEY, REPLICATION

    spec = load_spec(str(PROD), (REPLICATION, *overrides))
    boundary = boundary_document(spec)
    text = json.dumps(boundary)
    assert DR_KEY in text  # the replicas' key is named: it is in another region, not tagged
    if spec.data["security"]["encryption"].get("kms_key_arn"):
        assert spec.data["security"]["encryption"]["kms_key_arn"] in text
    evaluator = IAMPolicy(json.dumps(_evaluated(boundary, "*")))
    roles = [r for r in build(spec) if r.kind == "aws_iam_role"]
    assert len(roles) == (5 if overrides and "cross_account" in overrides[0] else 4)  # rotation: 1
    for role in roles:
        for doc in role.props["inline_policies"].values():
            for st in doc["Statement"]:
                for action in st["Action"]:
                    assert evaluator.is_action_permitted(action, "*") == PermissionResult.PERMITTED, (
                        role.address,
                        action,
                    )
