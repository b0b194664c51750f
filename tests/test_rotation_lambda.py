"""The rotation function's code (byoc/templates/rotation_lambda.py), in-process against a dev cluster
applied on moto with scheduled rotation on: its four steps with a real moto Secrets Manager and EC2,
and the nodes answered through SSM by ``NodeShell`` as byoc-proton-password and Proton would (each
node holds one version of the secret; the command names the version it is to hold). Also the zip:
deterministic, with the same placeholders as the function."""

from __future__ import annotations

import io
import re
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from byoc.blueprint import rotation as blueprint
from byoc.resources.lambda_function import code_hash
from byoc.templates import rotation_lambda as fn
from tests.daytwo import applied
from tests.nodeshell import Answer, NodeShell

REGION = "us-west-2"
_VERSION = re.compile(r"--version-id '?([A-Za-z0-9-]+)'?")


class Nodes:
    """Each node's users override: the version of the secret it holds; ``refuse``: nodes whose Proton
    refuses a new password (the script puts the previous override back and exits 3); ``deaf``: nodes
    that take it but then do not answer SELECT 1 with it."""

    def __init__(self, holds: dict[str, str]) -> None:
        self.holds = holds
        self.refuse: set[str] = set()
        self.deaf: set[str] = set()

    def answer(self, iid: str, script: str) -> Answer:
        found = _VERSION.findall(script)  # the last: the command's own (the script's usage names one too)
        assert found, script[:200]
        version = found[-1]
        if "byoc-proton-password" in script:  # apply.sh: the node-side script with --version-id
            if iid in self.refuse:
                return Answer(stderr="byoc-proton-password: previous override restored\n"
                              "byoc-proton-password: ERROR: Proton refuses the new password (HTTP 516)",
                              exit_code=3)
            if self.holds[iid] == version:
                return Answer(stdout="byoc-proton-password: unchanged\n")
            self.holds[iid] = version
            return Answer(stdout="byoc-proton-password: users.d override written\n"
                          "byoc-proton-password: the new password logs in\n")
        assert "SELECT 1" in script
        if self.holds[iid] == version and iid not in self.deaf:
            return Answer(stdout="1\n")
        return Answer(stderr="Code: 516. DB::Exception: default: Authentication failed", exit_code=22)


@pytest.fixture
def world(moto: None, tmp_path: Path, monkeypatch: Any) -> Any:
    eng = applied(tmp_path, monkeypatch, "security.password_rotation.enabled=true", count=3)
    ctx = eng.ctx
    state = eng.state()
    assert state is not None
    iids = [state.resources[f'aws_instance.node["{k}"]'].id for k in ("0", "1", "2")]
    arn = state.resources["aws_secretsmanager_secret.admin"].id
    sm = ctx.client("secretsmanager")
    current = _stage(sm, arn, fn.CURRENT)
    nodes = Nodes({iid: current for iid in iids})
    shell = NodeShell(nodes.answer).install(ctx.client("ssm"))
    template = dict(blueprint.package_files(REGION))["apply.sh"].decode()
    rotation = fn.Rotation(sm, ctx.client("ssm"), ctx.client("ec2"), template, sleep=lambda s: None)
    return ctx, arn, iids, nodes, shell, rotation, state


def _stage(sm: Any, arn: str, stage: str) -> str | None:
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return next((v for v, s in stages.items() if stage in s), None)


def start(arn: str) -> str:
    """What Secrets Manager does before it invokes the function: a new version id staged AWSPENDING,
    without a value yet (moto's RotateSecret would also move AWSCURRENT at once: not as AWS does)."""
    from moto.secretsmanager.models import secretsmanager_backends

    token = str(uuid.uuid4())
    secret = secretsmanager_backends["123456789012"][REGION].secrets[arn]
    secret.remove_version_stages_from_old_versions([fn.PENDING])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token,
                              "version_stages": [fn.PENDING]}
    return token


def value(sm: Any, arn: str, **which: str) -> str:
    """The value by version/stage; AWSCURRENT's by default, named (moto's GetSecretValue without a
    stage keeps answering the version that was current before UpdateSecretVersionStage; AWS's does not)."""
    return str(sm.get_secret_value(SecretId=arn, **(which or {"VersionStage": fn.CURRENT}))["SecretString"])


def test_the_four_steps_move_every_node_then_awscurrent(world: Any) -> None:
    ctx, arn, iids, nodes, shell, rotation, _state = world
    sm = ctx.client("secretsmanager")
    old = _stage(sm, arn, fn.CURRENT)
    old_value = value(sm, arn)
    token = start(arn)
    rotation.run("createSecret", arn, token)
    new_value = value(sm, arn, VersionId=token, VersionStage=fn.PENDING)
    assert new_value != old_value and len(new_value) == fn.PASSWORD_LENGTH
    rotation.run("createSecret", arn, token)  # a retry makes no second value
    assert value(sm, arn, VersionId=token) == new_value

    rotation.run("setSecret", arn, token)
    assert nodes.holds == {iid: token for iid in iids}
    # node by node, in node order: each takes the value and answers SELECT 1 with it before the next
    kinds = [(iid, "apply" if "byoc-proton-password" in s else "check") for iid, s in shell.sent]
    assert kinds == [(i, k) for i in iids for k in ("apply", "check")]
    assert _stage(sm, arn, fn.CURRENT) == old  # nothing moved in the secret yet

    rotation.run("testSecret", arn, token)
    rotation.run("finishSecret", arn, token)
    assert _stage(sm, arn, fn.CURRENT) == token and _stage(sm, arn, "AWSPREVIOUS") == old
    assert value(sm, arn) == new_value
    rotation.run("finishSecret", arn, token)  # already current: nothing to do
    # the password went to no node in a command: each node reads it by version id itself
    assert not any(new_value in s or old_value in s for _, s in shell.sent)


def begun(world: Any) -> tuple[Any, str | None, str]:
    """A rotation started and its value created: (Secrets Manager client, AWSCURRENT's version, token)."""
    ctx, arn, _, _, _, rotation, _ = world
    sm = ctx.client("secretsmanager")
    old = _stage(sm, arn, fn.CURRENT)
    token = start(arn)
    rotation.run("createSecret", arn, token)
    return sm, old, token


def test_a_node_that_refuses_stops_the_roll_puts_the_others_back_and_the_retry_finishes(world: Any) -> None:
    _, arn, iids, nodes, shell, rotation, _ = world
    sm, old, token = begun(world)
    nodes.refuse.add(iids[1])
    with pytest.raises(fn.RotationFailed) as failed:
        rotation.run("setSecret", arn, token)
    message = str(failed.value)
    assert f"node 1 ({iids[1]})" in message and "Proton refuses the new password" in message
    assert "Nodes 0 were put back on the AWSCURRENT password" in message
    # node 0 went back to the current value, node 1 kept it (its script restored it), node 2 untouched
    assert nodes.holds == {iid: old for iid in iids}
    assert not shell.scripts_for(iids[2])
    assert _stage(sm, arn, fn.CURRENT) == old and _stage(sm, arn, fn.PENDING) == token

    # Secrets Manager retries the rotation with the same token: the value stays, the roll finishes
    pending = value(sm, arn, VersionId=token)
    nodes.refuse.clear()
    rotation.run("createSecret", arn, token)
    rotation.run("setSecret", arn, token)
    rotation.run("testSecret", arn, token)
    rotation.run("finishSecret", arn, token)
    assert nodes.holds == {iid: token for iid in iids}
    assert _stage(sm, arn, fn.CURRENT) == token and value(sm, arn) == pending


def test_a_node_that_takes_it_but_does_not_answer_is_put_back_too(world: Any) -> None:
    _, arn, iids, nodes, shell, rotation, _ = world
    _, old, token = begun(world)
    nodes.deaf.add(iids[0])
    with pytest.raises(fn.RotationFailed, match="does not answer SELECT 1"):
        rotation.run("setSecret", arn, token)
    assert nodes.holds[iids[0]] == old and not shell.scripts_for(iids[1])


def test_testsecret_fails_while_a_node_does_not_hold_the_pending_value(world: Any) -> None:
    _, arn, iids, nodes, _, rotation, _state = world
    token = start(arn)
    rotation.run("createSecret", arn, token)
    nodes.holds[iids[0]] = token  # one node only
    with pytest.raises(fn.RotationFailed, match=f"node 1 \\({iids[1]}\\)"):
        rotation.run("testSecret", arn, token)


def test_testsecret_alone_on_a_version_without_a_value_touches_no_node(world: Any) -> None:
    # RotateSecret with RotateImmediately false: Secrets Manager runs testSecret alone
    _, arn, _, _, shell, rotation, _ = world
    rotation.run("testSecret", arn, start(arn))
    assert not shell.sent


def test_a_token_that_is_not_pending_or_not_of_the_secret_is_refused(world: Any) -> None:
    ctx, arn, _, _, shell, rotation, _state = world
    sm = ctx.client("secretsmanager")
    with pytest.raises(fn.RotationFailed, match="has no version"):
        rotation.run("setSecret", arn, str(uuid.uuid4()))
    current = _stage(sm, arn, fn.CURRENT)
    rotation.run("setSecret", arn, current)  # already AWSCURRENT: nothing to do, no node touched
    assert not shell.sent
    with pytest.raises(fn.RotationFailed, match="ARN"):
        rotation.run("setSecret", "byoc/x; rm -rf /", current)


def test_the_zip_is_deterministic_and_carries_the_function_and_its_node_command() -> None:
    data = blueprint.package_zip(REGION)
    blueprint.package_zip.cache_clear()
    blueprint.package_files.cache_clear()
    assert blueprint.package_zip(REGION) == data  # same bytes when built again
    assert blueprint.source_code_hash(REGION) == code_hash(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["rotation_lambda.py", "apply.sh"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        apply = zf.read("apply.sh").decode()
        code = zf.read("rotation_lambda.py").decode()
    assert code == Path(fn.__file__).read_text()
    assert blueprint.ARN_PLACEHOLDER == fn.ARN_PLACEHOLDER
    assert blueprint.VERSION_PLACEHOLDER == fn.VERSION_PLACEHOLDER
    assert f"SECRET_ARN={fn.ARN_PLACEHOLDER}" in apply and f"--version-id {fn.VERSION_PLACEHOLDER}" in apply
    assert "REGION=us-west-2" in apply
    assert blueprint.package_zip("eu-west-1") != data  # the node command names the region


# -- `byoc rotate-password` with scheduled rotation: one mechanism ---------------------------------


def test_rotate_password_starts_secrets_managers_rotation_and_touches_no_node(world: Any) -> None:
    from byoc.operations.rotate import plan_rotation, rotate_password

    ctx, arn, _, _, shell, _, state = world
    calls: list[dict[str, Any]] = []
    ctx.client("secretsmanager").meta.events.register(
        "provide-client-params.secrets-manager.RotateSecret", lambda params, **_: calls.append(dict(params)))
    plan = plan_rotation(ctx, state)
    assert plan.function and plan.function.endswith(":function:dev-proton-password-rotation")
    assert "rotated by Secrets Manager on a schedule" in plan.describe()
    result = rotate_password(ctx, state, plan)
    assert result.started and result.ok and result.version_id
    assert calls == [{"SecretId": arn, "RotateImmediately": True}]  # the configured function and rules
    assert not shell.sent  # no node was asked anything: the function does the roll


def test_rotate_password_refuses_while_a_rotation_is_in_progress(world: Any) -> None:
    from byoc.errors import ByocError
    from byoc.operations.rotate import plan_rotation

    ctx, arn, _, _, shell, _, state = world
    token = start(arn)
    with pytest.raises(ByocError) as refused:
        plan_rotation(ctx, state)
    message = str(refused.value)
    assert f"version {token} is AWSPENDING" in message and "Nothing was changed" in message
    assert "/aws/lambda/dev-proton-password-rotation" in message
    assert not shell.sent



# -- the spec ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    (("security.password_rotation.enabled=true", "network.nat_gateway=none"),
     "security.password_rotation.enabled: needs a NAT gateway, but network.nat_gateway is none"),
    (("security.password_rotation.schedule_days=0",), "security.password_rotation.schedule_days"),
    (("security.password_rotation.schedule_days=1001",), "security.password_rotation.schedule_days"),
    (("security.password_rotation.schedule_expression=every day",),
     "security.password_rotation.schedule_expression"),
    (("security.password_rotation.duration=25h",), "security.password_rotation.duration"),
])
def test_a_rotation_that_cannot_be_is_refused_naming_the_field(overrides: tuple[str, ...],
                                                               message: str) -> None:
    from byoc.errors import SpecError
    from byoc.spec import load_spec

    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec("specs/dev.yaml", overrides)


def test_off_unless_the_spec_says_so_and_the_rules_follow_the_provider() -> None:
    from byoc.blueprint import build
    from byoc.spec import load_spec

    dev = load_spec("specs/dev.yaml")
    assert dev.data["security"]["password_rotation"] == {
        "enabled": False, "schedule_days": 30, "schedule_expression": None, "duration": None,
        "code_signing_config_arn": None}
    assert not [r for r in build(dev) if "rotation" in r.address]
    cron = load_spec("specs/dev.yaml", ("security.password_rotation.enabled=true",
                                        "security.password_rotation.schedule_expression=cron(0 4 ? * SUN *)",
                                        "security.password_rotation.duration=3h"))
    [rot] = [r for r in build(cron) if r.kind == "aws_secretsmanager_secret_rotation"]
    assert rot.props["rotation_rules"] == {"automatically_after_days": None,
                                           "schedule_expression": "cron(0 4 ? * SUN *)", "duration": "3h"}
    assert rot.props["rotate_immediately"] is False
    [fn] = [r for r in build(cron) if r.kind == "aws_lambda_function"]
    assert fn.props["runtime"] == "python3.12" and fn.props["reserved_concurrent_executions"] == 1
    assert fn.props["tracing_config"] == {"mode": "Active"} and "environment" not in fn.props
    [sg] = [r for r in build(cron) if r.address == "aws_security_group.rotation"]
    assert sg.props["ingress"] == []
    assert [(e["from_port"], e["to_port"]) for e in sg.props["egress"]] == [(443, 443)]
