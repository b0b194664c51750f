"""aws_iam_role against moto: create = discover, policy normal form, updates, adoption, delete retries."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources._iam import normalise_policy
from byoc.resources.iam_role import KIND

ADDR = "aws_iam_role.node"
PATH = "/byoc/test/"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
    ],
}
S3_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": ["true"]}},
        }
    ],
}


def props(**over: Any) -> dict[str, Any]:
    base = {
        "name": "test-node",
        "path": PATH,
        "description": "byoc test: Proton nodes",
        "assume_role_policy": TRUST,
        "inline_policies": {"proton-node": S3_READ},
        "max_session_duration": 3600,
        "tags": {"Name": "test-node", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


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


def other_ctx() -> AwsContext:
    return AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)


# -- the policy normal form --------------------------------------------------------------------
def test_normalise_policy_string_or_list_forms() -> None:
    loose = {
        "Version": "2012-10-17",
        "Id": "dropped",
        "Statement": {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:root", "Service": ["b.amazonaws.com", "a.amazonaws.com"]},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": "x"},
                "Bool": {"aws:MultiFactorAuthPresent": True},
            },
        },
    }
    assert normalise_policy(loose) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "AWS": ["arn:aws:iam::1:root"],
                    "Service": ["a.amazonaws.com", "b.amazonaws.com"],
                },
                "Action": ["sts:AssumeRole"],
                "Condition": {
                    "StringEquals": {"sts:ExternalId": ["x"]},
                    "Bool": {"aws:MultiFactorAuthPresent": ["true"]},
                },
            }
        ],
    }
    star = {
        "Statement": [{"Sid": "", "Effect": "Deny", "Principal": "*", "NotAction": "s3:*", "Resource": "*"}]
    }
    assert normalise_policy(star) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "", "Effect": "Deny", "Principal": "*", "NotAction": ["s3:*"], "Resource": ["*"]}
        ],
    }


def test_normalise_policy_reads_json_and_url_encoded_text() -> None:
    text = json.dumps(S3_READ)
    assert normalise_policy(text) == S3_READ
    assert normalise_policy(urllib.parse.quote(text)) == S3_READ
    assert normalise_policy(normalise_policy(S3_READ)) == S3_READ  # idempotent
    # statements keep their order
    two = {"Version": "2012-10-17", "Statement": [TRUST["Statement"][0], S3_READ["Statement"][0]]}
    assert normalise_policy(two)["Statement"][0]["Effect"] == "Allow"
    assert "Sid" not in normalise_policy(two)["Statement"][0]
    assert normalise_policy(two)["Statement"][1]["Sid"] == "Read"


# -- create / discover ----------------------------------------------------------------------------
def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.id == "test-node" and live.address == ADDR
    assert live.props == props()
    assert KIND.discover(ctx) == [live]
    assert live.attr("arn") == "arn:aws:iam::123456789012:role/byoc/test/test-node"
    assert live.attr("unique_id").startswith("ARO") and live.attr("name") == "test-node"
    # what AWS holds in another JSON form still reads back as the blueprint's form
    role = ctx.client("iam").get_role(RoleName="test-node")["Role"]
    assert role["AssumeRolePolicyDocument"] == TRUST


def test_create_puts_the_policies_without_reading_the_role_first(ctx: AwsContext) -> None:
    logs = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": ["*"]}]}
    calls = count(ctx, "CreateRole", "GetRole", "PutRolePolicy")
    live = KIND.create(ctx, ADDR, props(inline_policies={"proton-node": S3_READ, "logs": logs}))
    assert calls == {"CreateRole": 1, "GetRole": 0, "PutRolePolicy": 2}
    assert sorted(live.props["inline_policies"]) == ["logs", "proton-node"]
    assert KIND.discover(ctx) == [live]


def test_create_without_inline_policies_makes_one_call(ctx: AwsContext) -> None:
    calls = count(ctx, "CreateRole", "GetRole", "PutRolePolicy")
    live = KIND.create(ctx, ADDR, props(inline_policies={}))
    assert calls == {"CreateRole": 1, "GetRole": 0, "PutRolePolicy": 0}
    assert KIND.discover(ctx) == [live]


def test_create_retries_put_role_policy_while_the_new_role_propagates(ctx: AwsContext) -> None:
    calls = fail_first(ctx, "PutRolePolicy", "NoSuchEntity", 2)  # IAM does not see the new role yet
    live = KIND.create(ctx, ADDR, props())
    assert len(calls) == 3
    doc = ctx.client("iam").get_role_policy(RoleName="test-node", PolicyName="proton-node")["PolicyDocument"]
    assert normalise_policy(doc) == S3_READ
    assert live.props == props() and KIND.discover(ctx) == [live]


def test_create_reports_a_role_iam_never_shows(ctx: AwsContext) -> None:
    ctx.retry_timeout = 5.0  # the settle time, shortened (sleeps are skipped: a few attempts)
    calls = fail_first(ctx, "PutRolePolicy", "NoSuchEntity", 1000)
    with pytest.raises(CloudError, match=r"IAM role 'test-node' .*inline policy 'proton-node'") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.address == ADDR and err.value.aws_id == "test-node"
    assert err.value.code == "NoSuchEntity" and len(calls) > 1


def test_create_raises_other_put_role_policy_errors_at_once(ctx: AwsContext) -> None:
    calls = fail_first(ctx, "PutRolePolicy", "MalformedPolicyDocument", 5)
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):
        KIND.create(ctx, ADDR, props())
    assert len(calls) == 1
    # the role is tagged: the next run finds it and puts the policy (adoption)
    assert [v.props["inline_policies"] for v in KIND.discover(ctx)] == [{}]


def test_loose_documents_in_aws_read_back_in_normal_form(ctx: AwsContext) -> None:
    iam = ctx.client("iam")
    loose_trust = {
        "Statement": {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        },
        "Version": "2012-10-17",
    }
    iam.create_role(
        RoleName="test-node",
        Path=PATH,
        AssumeRolePolicyDocument=json.dumps(loose_trust),
        Tags=[{"Key": k, "Value": v} for k, v in props()["tags"].items()],
    )
    iam.put_role_policy(
        RoleName="test-node",
        PolicyName="proton-node",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Read",
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:GetObject"],
                        "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b"],
                        "Condition": {"Bool": {"aws:SecureTransport": True}},
                    }
                ],
            }
        ),
    )
    [live] = KIND.discover(ctx)
    assert live.props == props(description="")


def test_url_encoded_documents_are_decoded(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())

    def encode(parsed: dict[str, Any], model: Any, **kw: Any) -> None:
        for role in parsed.get("Roles", []):
            role["AssumeRolePolicyDocument"] = urllib.parse.quote(
                json.dumps(role["AssumeRolePolicyDocument"])
            )
        if "PolicyDocument" in parsed:
            parsed["PolicyDocument"] = urllib.parse.quote(json.dumps(parsed["PolicyDocument"]))

    # last on the service-wide event: runs after botocore's own decoder, so the text reaches byoc
    ctx.client("iam").meta.events.register_last("after-call.iam", encode)
    assert isinstance(ctx.client("iam").list_roles()["Roles"][0]["AssumeRolePolicyDocument"], str)
    assert KIND.discover(ctx) == [live]


def test_discovery_is_per_cluster_by_path_and_tags(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    iam = ctx.client("iam")
    doc = json.dumps(TRUST)
    iam.create_role(RoleName="untagged", Path=PATH, AssumeRolePolicyDocument=doc)  # ours by path only
    iam.create_role(
        RoleName="elsewhere",
        Path="/other/",
        AssumeRolePolicyDocument=doc,
        Tags=[{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:address", "Value": "x.y"}],
    )
    iam.create_role(
        RoleName="longer",
        Path="/byoc/test2/",
        AssumeRolePolicyDocument=doc,
        Tags=[{"Key": "byoc:cluster", "Value": "test2"}, {"Key": "byoc:address", "Value": "x.y"}],
    )
    calls = count(ctx, "ListRoles", "ListRoleTags", "ListRolePolicies", "GetRolePolicy", "GetRole")
    assert KIND.discover(ctx) == [live]
    # one list; both roles under the path read (GetRole: ListRoles omits tags and boundary); policies
    # of ours only
    assert calls == {
        "ListRoles": 1,
        "ListRoleTags": 0,
        "ListRolePolicies": 1,
        "GetRolePolicy": 1,
        "GetRole": 2,
    }
    assert KIND.discover(other_ctx()) == []


# -- update ------------------------------------------------------------------------------------------
def test_update_each_prop_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    trust2 = normalise_policy(
        {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
    )
    extra = normalise_policy(
        {"Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}
    )
    steps = [
        props(assume_role_policy=trust2),
        props(assume_role_policy=trust2, description="changed"),
        props(assume_role_policy=trust2, description="changed", max_session_duration=7200),
        props(
            assume_role_policy=trust2,
            description="changed",
            max_session_duration=7200,
            inline_policies={"proton-node": extra, "logs": extra},
        ),  # one changed, one added
        props(
            assume_role_policy=trust2,
            description="changed",
            max_session_duration=7200,
            inline_policies={"logs": extra},
        ),  # one removed
        props(
            assume_role_policy=trust2,
            description="changed",
            max_session_duration=7200,
            inline_policies={"logs": extra},
            tags={"Name": "test-node", "byoc:cluster": "test", "byoc:address": ADDR, "env": "prod"},
        ),
    ]
    for new in steps:
        changed = {k for k in new if new[k] != live.props[k]}
        assert len(changed) == 1
        live = KIND.update(ctx, live, new, changed)
        assert live.props == new
        assert KIND.discover(ctx) == [live]


def test_update_role_keeps_the_other_setting(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(max_session_duration=7200))
    live = KIND.update(ctx, live, props(max_session_duration=7200, description=""), {"description"})
    assert KIND.discover(ctx)[0].props == props(max_session_duration=7200, description="")


def test_rules() -> None:
    assert KIND.force_new == frozenset({"name", "path"})
    assert KIND.pins == frozenset()
    assert KIND.holds_data is False
    assert KIND.kind == "aws_iam_role" and KIND.service == "iam"


# -- adoption after a crashed run ----------------------------------------------------------------------
def test_create_adopts_our_role_left_by_a_crashed_run(ctx: AwsContext) -> None:
    iam = ctx.client("iam")
    iam.create_role(
        RoleName="test-node",
        Path=PATH,
        AssumeRolePolicyDocument=json.dumps(TRUST),
        Tags=[{"Key": k, "Value": v} for k, v in props()["tags"].items() if k != "team"],
    )
    calls = count(ctx, "CreateRole", "PutRolePolicy", "UpdateRole", "TagRole")
    live = KIND.create(ctx, ADDR, props())
    assert calls == {"CreateRole": 1, "PutRolePolicy": 1, "UpdateRole": 1, "TagRole": 1}
    assert live.props == props() and KIND.discover(ctx) == [live]


def test_create_refuses_a_role_that_is_not_ours(ctx: AwsContext) -> None:
    ctx.client("iam").create_role(RoleName="test-node", Path=PATH, AssumeRolePolicyDocument=json.dumps(TRUST))
    with pytest.raises(CloudError, match="not managed by byoc") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.code == "EntityAlreadyExists" and err.value.aws_id == "test-node"


def test_create_refuses_our_role_under_another_address(ctx: AwsContext) -> None:
    KIND.create(ctx, ADDR, props())
    other = props(tags={"byoc:cluster": "test", "byoc:address": "aws_iam_role.other"})
    with pytest.raises(CloudError, match=r"belongs to aws_iam_role\.node"):
        KIND.create(ctx, "aws_iam_role.other", other)


# -- delete ----------------------------------------------------------------------------------------------
def test_delete_detaches_everything_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    iam = ctx.client("iam")
    policy = iam.create_policy(PolicyName="managed", PolicyDocument=json.dumps(S3_READ))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="test-node", PolicyArn=policy)
    iam.create_instance_profile(InstanceProfileName="test-node", Path=PATH)
    iam.add_role_to_instance_profile(InstanceProfileName="test-node", RoleName="test-node")
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    assert iam.get_instance_profile(InstanceProfileName="test-node")["InstanceProfile"]["Roles"] == []
    KIND.delete(ctx, live)  # already gone: fine


def test_delete_retries_delete_conflict(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteRole", "DeleteConflict", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteRole", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1
    assert [v.id for v in KIND.discover(ctx)] == ["test-node"]


# -- reading by name (a plain plan: the engine sets ctx.known) -------------------------------------
def known(ctx: AwsContext, *policies: str, name: str = "test-node") -> AwsContext:
    ctx.known = {"aws_iam_role": {name: frozenset(policies)}}
    return ctx


def own_role(ctx: AwsContext, name: str = "test-node", path: str = PATH, address: str = ADDR) -> None:
    """A role with the cluster's tags made outside ``create`` (a crashed run, or by hand)."""
    tags = {"byoc:cluster": "test", "byoc:address": address}
    ctx.client("iam").create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(TRUST),
                                  Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def test_known_role_is_read_by_name(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = count(ctx, "GetRole", "GetRolePolicy", "ListRoles", "ListRoleTags", "ListRolePolicies")
    assert KIND.discover(known(ctx, "proton-node")) == [live]
    assert calls == {"GetRole": 1, "GetRolePolicy": 1,
                     "ListRoles": 0, "ListRoleTags": 0, "ListRolePolicies": 0}
    assert KIND.read(ctx, "test-node") == live  # `byoc import`: by name, whatever is known


def test_known_name_taken_by_someone_else_is_not_ours(ctx: AwsContext) -> None:
    iam = ctx.client("iam")
    iam.create_role(RoleName="test-node", Path=PATH, AssumeRolePolicyDocument=json.dumps(TRUST))
    own_role(ctx, name="test-elsewhere", path="/other/")  # our tags, but not under the cluster's path
    iam.create_role(RoleName="test-other", Path=PATH, AssumeRolePolicyDocument=json.dumps(TRUST),
                    Tags=[{"Key": "byoc:cluster", "Value": "other"}, {"Key": "byoc:address", "Value": ADDR}])
    names = ("test-node", "test-elsewhere", "test-other", "nope")
    ctx.known = {"aws_iam_role": {n: frozenset() for n in names}}
    assert KIND.discover(ctx) == []
    assert KIND.read(ctx, "test-node") is None
    with pytest.raises(CloudError, match="not managed by byoc"):
        KIND.create(ctx, ADDR, props())


def test_hand_deleted_inline_policy_is_drift_and_update_puts_it_back(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    ctx.client("iam").delete_role_policy(RoleName="test-node", PolicyName="proton-node")
    [found] = KIND.discover(known(ctx, "proton-node"))
    assert found.props["inline_policies"] == {} and found.props == {**live.props, "inline_policies": {}}
    KIND.update(ctx, found, props(), {"inline_policies"})
    assert KIND.discover(ctx) == [live]


def test_hand_added_inline_policy_is_seen_by_the_full_audit_only(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    ctx.client("iam").put_role_policy(RoleName="test-node", PolicyName="extra",
                                      PolicyDocument=json.dumps(S3_READ))
    assert KIND.discover(known(ctx, "proton-node")) == [live]
    ctx.known = None
    [audited] = KIND.discover(ctx)
    assert sorted(audited.props["inline_policies"]) == ["extra", "proton-node"]
    # a policy the state records is read by name too (a plan then removes it)
    assert KIND.discover(known(ctx, "proton-node", "extra")) == [audited]


def test_stranger_under_the_path_is_found_by_the_full_audit_only(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    own_role(ctx, name="test-stray", address="aws_iam_role.stray")
    assert KIND.discover(known(ctx, "proton-node")) == [live]
    ctx.known = None
    assert sorted(x.address for x in KIND.discover(ctx)) == ["aws_iam_role.node", "aws_iam_role.stray"]


def test_role_left_by_a_crashed_create_is_found_by_name_and_adopted(ctx: AwsContext) -> None:
    own_role(ctx)  # CreateRole happened, the policy was never put
    [found] = KIND.discover(known(ctx, "proton-node"))
    assert found.address == ADDR and found.props["inline_policies"] == {}
    live = KIND.create(ctx, ADDR, props())
    assert live.props == props() and KIND.discover(ctx) == [live]
