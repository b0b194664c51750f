"""aws_iam_instance_profile against moto: create = discover, role swap, adoption, IAM eventual consistency."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.iam_instance_profile import KIND

ADDR = "aws_iam_instance_profile.node"
PATH = "/byoc/test/"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def props(**over: Any) -> dict[str, Any]:
    base = {
        "name": "test-node",
        "path": PATH,
        "role": "test-node",
        "tags": {"Name": "test-node", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


def make_role(ctx: AwsContext, name: str = "test-node") -> None:
    ctx.client("iam").create_role(RoleName=name, Path=PATH, AssumeRolePolicyDocument=json.dumps(TRUST))


def count(ctx: AwsContext, *ops: str) -> dict[str, int]:
    """Count calls of each IAM operation from now on."""
    calls = dict.fromkeys(ops, 0)

    def hook(model: Any, **kw: Any) -> None:
        if model.name in calls:
            calls[model.name] += 1

    ctx.client("iam").meta.events.register_first("before-call.iam", hook)
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    """Make ``op`` raise ``code`` for its first ``times`` calls; returns the call counter."""
    calls: list[int] = []

    def hook(**kw: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    ctx.client("iam").meta.events.register_first(f"before-call.iam.{op}", hook)
    return calls


@pytest.fixture
def role(ctx: AwsContext) -> AwsContext:
    make_role(ctx)
    return ctx


def test_create_equals_discover(role: AwsContext) -> None:
    ctx = role
    live = KIND.create(ctx, ADDR, props())
    assert live.id == "test-node" and live.address == ADDR
    assert live.props == props()
    assert KIND.discover(ctx) == [live]
    assert live.attr("arn") == "arn:aws:iam::123456789012:instance-profile/byoc/test/test-node"
    assert live.attr("name") == "test-node"


def test_discovery_is_per_cluster_by_path_and_tags(role: AwsContext) -> None:
    ctx = role
    live = KIND.create(ctx, ADDR, props())
    iam = ctx.client("iam")
    iam.create_instance_profile(InstanceProfileName="untagged", Path=PATH)
    # moto ignores PathPrefix: a tagged profile elsewhere must still be filtered out by path
    iam.create_instance_profile(
        InstanceProfileName="elsewhere",
        Path="/other/",
        Tags=[{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": "x.y"}],
    )
    calls = count(ctx, "ListInstanceProfiles", "GetInstanceProfile")
    assert KIND.discover(ctx) == [live]
    assert calls == {"ListInstanceProfiles": 1, "GetInstanceProfile": 2}  # the two under the path
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []


def test_update_role_and_tags_in_place(role: AwsContext) -> None:
    ctx = role
    make_role(ctx, "test-node2")
    live = KIND.create(ctx, ADDR, props())
    calls = count(ctx, "RemoveRoleFromInstanceProfile", "AddRoleToInstanceProfile")
    live = KIND.update(ctx, live, props(role="test-node2"), {"role"})
    assert calls == {"RemoveRoleFromInstanceProfile": 1, "AddRoleToInstanceProfile": 1}
    assert live.props == props(role="test-node2") and KIND.discover(ctx) == [live]
    tags = {"Name": "test-node", "byoc:cluster": "test", "byoc:address": ADDR, "env": "prod"}
    live = KIND.update(ctx, live, props(role="test-node2", tags=tags), {"tags"})
    assert live.props == props(role="test-node2", tags=tags) and KIND.discover(ctx) == [live]


def test_rules() -> None:
    assert KIND.force_new == frozenset({"name", "path"})
    assert KIND.pins == frozenset({"role"})
    assert KIND.holds_data is False
    assert KIND.kind == "aws_iam_instance_profile" and KIND.service == "iam"


def test_add_role_retries_no_such_entity_right_after_create_role(role: AwsContext) -> None:
    ctx = role
    calls = fail_first(ctx, "AddRoleToInstanceProfile", "NoSuchEntity", 3)
    live = KIND.create(ctx, ADDR, props())
    assert len(calls) == 4 and KIND.discover(ctx) == [live]


def test_create_adds_the_role_without_reading_the_profile_first(role: AwsContext) -> None:
    ctx = role
    calls = count(ctx, "CreateInstanceProfile", "GetInstanceProfile", "AddRoleToInstanceProfile")
    live = KIND.create(ctx, ADDR, props())
    assert calls == {"CreateInstanceProfile": 1, "GetInstanceProfile": 0, "AddRoleToInstanceProfile": 1}
    assert KIND.discover(ctx) == [live]


def test_create_waits_out_a_new_profile_iam_does_not_show_yet(role: AwsContext) -> None:
    ctx = role
    failed = fail_first(ctx, "AddRoleToInstanceProfile", "NoSuchEntity", 2)
    calls = count(ctx, "GetInstanceProfile")
    live = KIND.create(ctx, ADDR, props())
    assert len(failed) == 3 and calls == {"GetInstanceProfile": 0}
    profile = ctx.client("iam").get_instance_profile(InstanceProfileName="test-node")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["test-node"]
    assert live.props == props() and KIND.discover(ctx) == [live]


def test_create_reports_a_role_or_profile_iam_never_shows(role: AwsContext) -> None:
    ctx = role
    ctx.retry_timeout = 5.0  # the settle time, shortened (sleeps are skipped: a few attempts)
    calls = fail_first(ctx, "AddRoleToInstanceProfile", "NoSuchEntity", 1000)
    with pytest.raises(CloudError, match=r"role 'test-node' to instance profile 'test-node'") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.address == ADDR and err.value.aws_id == "test-node"
    assert err.value.code == "NoSuchEntity" and len(calls) > 1


def test_add_role_raises_other_errors_at_once(role: AwsContext) -> None:
    ctx = role
    calls = fail_first(ctx, "AddRoleToInstanceProfile", "LimitExceeded", 5)
    with pytest.raises(ClientError, match="LimitExceeded"):
        KIND.create(ctx, ADDR, props())
    assert len(calls) == 1
    # what create made is tagged, so discovery finds it (without its role)
    assert [v.props["role"] for v in KIND.discover(ctx)] == [""]


def test_create_adopts_our_profile_left_by_a_crashed_run(role: AwsContext) -> None:
    ctx = role
    ctx.client("iam").create_instance_profile(
        InstanceProfileName="test-node",
        Path=PATH,
        Tags=[{"Key": k, "Value": v} for k, v in props()["tags"].items()],
    )  # the crash came before AddRoleToInstanceProfile
    calls = count(ctx, "CreateInstanceProfile", "AddRoleToInstanceProfile")
    live = KIND.create(ctx, ADDR, props())
    assert calls == {"CreateInstanceProfile": 1, "AddRoleToInstanceProfile": 1}
    assert live.props == props() and KIND.discover(ctx) == [live]


def test_create_refuses_a_profile_that_is_not_ours(role: AwsContext) -> None:
    ctx = role
    ctx.client("iam").create_instance_profile(InstanceProfileName="test-node", Path=PATH)
    with pytest.raises(CloudError, match="not managed by byoc") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.code == "EntityAlreadyExists"


def test_delete_removes_the_role_then_delete_again(role: AwsContext) -> None:
    ctx = role
    live = KIND.create(ctx, ADDR, props())
    calls = count(ctx, "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile")
    KIND.delete(ctx, live)
    assert calls == {"RemoveRoleFromInstanceProfile": 1, "DeleteInstanceProfile": 1}
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # already gone: fine
    ctx.client("iam").delete_role(RoleName="test-node")  # the role is free again


def test_delete_retries_delete_conflict(role: AwsContext) -> None:
    ctx = role
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteInstanceProfile", "DeleteConflict", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(role: AwsContext) -> None:
    ctx = role
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteInstanceProfile", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and [v.id for v in KIND.discover(ctx)] == ["test-node"]


# -- reading by name (a plain plan: the engine sets ctx.known) -------------------------------------
def test_known_profile_is_read_by_name_and_strangers_only_by_the_full_audit(role: AwsContext) -> None:
    ctx = role
    live = KIND.create(ctx, ADDR, props())
    iam = ctx.client("iam")
    tags = [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": "x.stray"}]
    iam.create_instance_profile(InstanceProfileName="test-stray", Path=PATH, Tags=tags)
    ctx.known = {"aws_iam_instance_profile": {"test-node": frozenset()}}
    calls = count(ctx, "ListInstanceProfiles", "GetInstanceProfile")
    assert KIND.discover(ctx) == [live]
    assert calls == {"ListInstanceProfiles": 0, "GetInstanceProfile": 1}
    ctx.known = None
    assert sorted(x.id for x in KIND.discover(ctx)) == ["test-node", "test-stray"]
    assert KIND.read(ctx, "test-stray") is not None  # `byoc import`: by name, whatever is known


def test_known_name_taken_by_someone_else_is_not_ours(role: AwsContext) -> None:
    ctx = role
    iam = ctx.client("iam")
    iam.create_instance_profile(InstanceProfileName="test-node", Path=PATH)  # no tags: not ours
    ours = [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": ADDR}]
    iam.create_instance_profile(InstanceProfileName="test-elsewhere", Path="/other/", Tags=ours)
    ctx.known = {"aws_iam_instance_profile": {n: frozenset() for n in ("test-node", "test-elsewhere", "x")}}
    assert KIND.discover(ctx) == []
    with pytest.raises(CloudError, match="not managed by byoc"):
        KIND.create(ctx, ADDR, props())
