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
from byoc.cli import main
from byoc.engine import Engine
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
from byoc.operations.upgrading import upgrade_steps
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import TargetHealth, free_eips_of_deleted_nat_gateways, https_bucket_policies
from tests.daytwo import AMI, DEV, ROOT, quiet_ctx
from tests.nodeshell import Answer, NodeShell, proton_version
from tests.test_rotate import SELECT_1

PROD = ROOT / "specs/prod.yaml"
BUMP = "cluster.proton_version=1.6.17"


class Recorder:
    """Every AWS call byoc makes, as its IAM action, under the use it is made for."""

    def __init__(self) -> None:
        self.use = "apply"
        self.calls: dict[str, set[str]] = defaultdict(set)

    @contextmanager
    def using(self, use: str) -> Iterator[None]:
        before, self.use = self.use, use
        try:
            yield
        finally:
            self.use = before

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Recorder:
        original = CallRecorder._before

        def before(this: CallRecorder, model: Any = None, context: Any = None, **kw: Any) -> None:
            if model is not None:
                self.calls[self.use].add(iam_action(model.service_model.endpoint_prefix, model.name))
            original(this, model=model, context=context, **kw)

        monkeypatch.setattr(CallRecorder, "_before", before)
        return self


def _permitted(policy: DeployerPolicy, action: str) -> bool:
    """moto's evaluator over every document of the policy: allowed by one, denied by none."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = [
        IAMPolicy(json.dumps(_actions_only(doc))).is_action_permitted(action, "*") for doc in policy.documents
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


def _actions_only(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as moto evaluates it here: every statement on Resource "*" (the recorder keeps
    actions, not ARNs), and a Deny with a Condition left out (moto ignores conditions: it would
    deny unconditionally what the condition only denies for another boundary)."""
    return {
        **doc,
        "Statement": [
            {**{k: v for k, v in st.items() if k != "Condition"}, "Resource": "*"}
            for st in doc["Statement"]
            if not (st["Effect"] == "Deny" and "Condition" in st)
        ],
    }


def _lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    https_bucket_policies(monkeypatch)
    rec = Recorder().install(monkeypatch)
    spec = load_spec(str(DEV), ("compute.instance_count=2",))
    ctx = quiet_ctx(spec)
    NodeShell(_nodes).install(ctx.client("ssm"))
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    TargetHealth(ctx.client("elbv2"), draining=1, initial=1)
    backend = LocalBackend(tmp_path, spec.cluster_name)
    options: dict[str, Any] = {"ctx": ctx, "backend": backend, "ami_resolver": lambda itype: AMI}
    c = Cluster(spec, **options)
    with rec.using("apply"):
        assert c.apply().ok
    with rec.using("plan"):
        assert not c.plan().has_changes
    with rec.using("drift"):
        assert c.drift().in_sync
    with rec.using("ops"):
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
        bumped = load_spec(str(DEV), ("compute.instance_count=2", BUMP))
        eng = Engine(bumped, health_timeout=0.3, **options)
        eng.upgrade_steps = upgrade_steps(eng)
        assert eng.apply(eng.plan()).ok
        c = Cluster(bumped, **options)
        assert c.destroy().ok
        assert c.destroy(include_data=True).ok
    return rec.calls


def test_every_call_of_the_lifecycle_is_allowed_by_the_policy_for_its_use(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _lifecycle(tmp_path, monkeypatch)
    assert set(calls) == {"apply", "plan", "drift", "ops"}
    spec = load_spec(str(DEV), ("compute.instance_count=2",))
    for use, actions in calls.items():
        policy = deployer_policy(spec, use)
        missing = sorted(a for a in actions if not _permitted(policy, a))
        assert not missing, f"--for {use} lacks {missing}"
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
    assert "iam:" not in boundary
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
    c = Cluster.from_spec(PROD)
    assert c.iam_policy("drift").documents == deployer_policy(load_spec(str(PROD)), "drift").documents


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
