"""aws_secretsmanager_secret against moto: create = discover, the value never leaks, updates keep
the value, restore of a secret scheduled for deletion, delete; AWS-only answers by injection."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources.secretsmanager_secret import KIND

ADDR = "aws_secretsmanager_secret.proton_admin"
NAME = "byoc/test/proton-admin"
TAGS = {"Name": NAME, "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"}


def props(**over: Any) -> dict[str, Any]:
    base = {
        "name": NAME,
        "description": "byoc test: Proton admin password",
        "kms_key_id": None,
        "recovery_window_in_days": 7,
        "password_length": 32,
        "tags": TAGS,
    }
    return {**base, **over}


def sm(ctx: AwsContext) -> Any:
    return ctx.client("secretsmanager")


def calls(ctx: AwsContext) -> list[tuple[str, dict[str, Any]]]:
    """Every Secrets Manager operation sent, with its parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []
    sm(ctx).meta.events.register_first(
        "provide-client-params.secrets-manager", lambda params, model, **kw: seen.append((model.name, params))
    )
    return seen


def fail_first(ctx: AwsContext, op: str, code: str, times: int, message: str = "injected") -> list[int]:
    counter: list[int] = []

    def hook(**kwargs: Any) -> None:
        counter.append(1)
        if len(counter) <= times:
            raise ClientError({"Error": {"Code": code, "Message": message}}, op)

    sm(ctx).meta.events.register_first(f"before-call.secrets-manager.{op}", hook)
    return counter


def generated(ctx: AwsContext) -> list[str]:
    """The passwords GetRandomPassword hands out (read only)."""
    out: list[str] = []
    sm(ctx).meta.events.register_first(
        "after-call.secrets-manager.GetRandomPassword",
        lambda parsed, **kw: out.append(parsed["RandomPassword"]),
    )
    return out


def value(ctx: AwsContext, secret_id: str = NAME) -> str:
    return str(sm(ctx).get_secret_value(SecretId=secret_id)["SecretString"])


def kms_key(ctx: AwsContext) -> str:
    return str(ctx.client("kms").create_key()["KeyMetadata"]["Arn"])


def other_ctx() -> AwsContext:
    return AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)


def test_create_equals_discover_and_the_value_never_shows(ctx: AwsContext) -> None:
    seen = calls(ctx)
    live = KIND.create(ctx, ADDR, props())
    assert live.props == props() and live.address == ADDR
    assert live.id.startswith(f"arn:aws:secretsmanager:us-west-2:123456789012:secret:{NAME}-")
    assert live.attrs == {"arn": live.id, "name": NAME}
    assert KIND.discover(ctx) == [live]
    password = value(ctx)
    assert len(password) == 32 and password.isalnum()
    for shown in (repr(live), repr(live.props), repr(live.attrs), repr(KIND.discover(ctx))):
        assert password not in shown
    ops = [op for op, _ in seen]
    assert ops[:2] == ["GetRandomPassword", "CreateSecret"]
    assert seen[0][1] == {"PasswordLength": 32, "ExcludePunctuation": True}
    create = seen[1][1]
    assert create["Tags"] == [{"Key": k, "Value": v} for k, v in sorted(TAGS.items())]
    assert "KmsKeyId" not in create and len(create["ClientRequestToken"]) == 64


def test_customer_key_and_length(ctx: AwsContext) -> None:
    want = props(kms_key_id=kms_key(ctx), password_length=40)
    live = KIND.create(ctx, ADDR, want)
    assert live.props == want
    assert len(value(ctx)) == 40
    # discovery cannot read the length back: it reports the blueprint's default
    reported = want | {"password_length": 32}
    assert KIND.discover(ctx) == [Live(live.address, live.kind, live.id, reported, live.attrs)]


def test_discovery_is_one_filtered_list_and_per_cluster(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    client = sm(ctx)
    # the tag-key and tag-value filters match separately: this one passes both and is not ours
    client.create_secret(Name="decoy", SecretString="x", Tags=[
        {"Key": "byoc:cluster", "Value": "other"}, {"Key": "env", "Value": "test"}])
    client.create_secret(Name="no-address", SecretString="x", Tags=[{"Key": "byoc:cluster", "Value": "test"}])
    seen = calls(ctx)
    found = KIND.discover(ctx)
    # the cluster-tagged one without an address is unmanaged; the decoy is not ours
    assert [(x.attrs["name"], x.address) for x in found if x != live] == [
        ("no-address", f'aws_secretsmanager_secret.unmanaged["{x.id}"]') for x in found if x != live]
    assert live in found and len(found) == 2
    assert [op for op, _ in seen] == ["ListSecrets"]
    assert seen[0][1]["IncludePlannedDeletion"] is False
    assert seen[0][1]["Filters"] == [
        {"Key": "tag-key", "Values": ["byoc:cluster"]},
        {"Key": "tag-value", "Values": ["test"]},
    ]
    assert [x.attrs["name"] for x in KIND.discover(other_ctx())] == ["decoy"]  # the other cluster's


def test_update_description_key_and_tags_keeps_the_value(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    before = value(ctx)
    seen = calls(ctx)
    key = kms_key(ctx)
    tags = {k: v for k, v in TAGS.items() if k != "team"} | {"env": "prod"}
    new = props(description="rotated by hand", kms_key_id=key, tags=tags)
    live = KIND.update(ctx, live, new, {"description", "kms_key_id", "tags"})
    assert live.props == new and KIND.discover(ctx) == [live]
    update = next(params for op, params in seen if op == "UpdateSecret")
    assert {"Description", "KmsKeyId"} <= set(update)
    assert not {"SecretString", "SecretBinary"} & set(update)  # no new value
    assert value(ctx) == before
    back = props(kms_key_id=None, tags=tags, description="rotated by hand")
    live = KIND.update(ctx, live, back, {"kms_key_id"})
    assert live.props == back and KIND.discover(ctx) == [live]


def test_rules() -> None:
    assert KIND.force_new == frozenset({"name"})
    assert KIND.pins == frozenset()
    assert KIND.holds_data is False
    assert KIND.hashed == frozenset()


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    seen = calls(ctx)
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    assert ("DeleteSecret", {"SecretId": live.id, "RecoveryWindowInDays": 7}) in seen
    assert sm(ctx).describe_secret(SecretId=live.id)["DeletedDate"]  # recoverable for 7 days
    KIND.delete(ctx, live)  # already scheduled: moto and AWS answer InvalidRequestException


def test_zero_recovery_window_deletes_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(recovery_window_in_days=0))
    seen = calls(ctx)
    KIND.delete(ctx, live)
    assert ("DeleteSecret", {"SecretId": live.id, "ForceDeleteWithoutRecovery": True}) in seen
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        sm(ctx).describe_secret(SecretId=live.id)
    KIND.delete(ctx, live)


def test_delete_waits_until_aws_reports_the_deletion(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    polls: list[int] = []

    def lagging(parsed: dict[str, Any], **kw: Any) -> None:
        polls.append(1)
        if len(polls) <= 2:
            parsed.pop("DeletedDate", None)

    sm(ctx).meta.events.register_first("after-call.secrets-manager.DescribeSecret", lagging)
    KIND.delete(ctx, live)
    assert len(polls) == 3


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    counter = fail_first(ctx, "DeleteSecret", "AccessDeniedException", 5)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        KIND.delete(ctx, live)
    assert len(counter) == 1 and KIND.discover(ctx) == [live]


# -- a name that is taken ----------------------------------------------------------------------
def test_secret_scheduled_for_deletion_is_restored_with_its_value(ctx: AwsContext) -> None:
    # moto answers ResourceExistsException here (real AWS: InvalidRequestException, below)
    first = KIND.create(ctx, ADDR, props())
    old = value(ctx)
    KIND.delete(ctx, first)
    live = KIND.create(ctx, ADDR, props(description="new description"))
    assert live.id == first.id and live.props == props(description="new description")
    assert KIND.discover(ctx) == [live]
    assert value(ctx) == old


def test_real_aws_scheduled_for_deletion_answer_also_restores(ctx: AwsContext) -> None:
    first = KIND.create(ctx, ADDR, props())
    old = value(ctx)
    KIND.delete(ctx, first)
    counter = fail_first(ctx, "CreateSecret", "InvalidRequestException", 1,
                         "You can't create this secret because a secret with this name is already "
                         "scheduled for deletion.")
    live = KIND.create(ctx, ADDR, props())
    assert len(counter) == 1 and KIND.discover(ctx) == [live] and value(ctx) == old


def test_scheduled_secret_of_someone_else_is_refused(ctx: AwsContext) -> None:
    client = sm(ctx)
    arn = client.create_secret(Name=NAME, SecretString="x", Tags=[{"Key": "app", "Value": "billing"}])["ARN"]
    client.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    with pytest.raises(CloudError, match="not this cluster's") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.code == "ResourceExistsException"
    assert client.describe_secret(SecretId=arn)["DeletedDate"]  # left as it was


def test_live_secret_of_someone_else_is_refused(ctx: AwsContext) -> None:
    sm(ctx).create_secret(Name=NAME, SecretString="x")
    with pytest.raises(CloudError, match="not this cluster's"):
        KIND.create(ctx, ADDR, props())


def test_our_own_live_secret_is_adopted(ctx: AwsContext) -> None:
    first = KIND.create(ctx, ADDR, props())
    old = value(ctx)
    live = KIND.create(ctx, ADDR, props(tags=TAGS | {"env": "prod"}))
    assert live.id == first.id and KIND.discover(ctx) == [live] and value(ctx) == old


# -- the value in failures ---------------------------------------------------------------------
def test_create_failure_never_carries_the_value(ctx: AwsContext) -> None:
    passwords, echoed = generated(ctx), []

    def echo(params: dict[str, Any], **kw: Any) -> None:  # a server that echoes the request
        body = params["body"].decode() if isinstance(params["body"], bytes) else str(params["body"])
        echoed.append(body)
        error = {"Code": "ValidationException", "Message": f"bad: {body}"}
        raise ClientError({"Error": error}, "CreateSecret")

    sm(ctx).meta.events.register_first("before-call.secrets-manager.CreateSecret", echo)
    with pytest.raises(CloudError) as err:
        KIND.create(ctx, ADDR, props())
    [password] = passwords
    assert password in echoed[0]  # the injected failure did carry it
    assert err.value.code == "ValidationException" and "bad:" in str(err.value)
    assert password not in str(err.value) and password not in repr(err.value)
    assert err.value.__context__ is None and err.value.__cause__ is None


def test_create_failure_is_raised_at_once(ctx: AwsContext) -> None:
    counter = fail_first(ctx, "CreateSecret", "AccessDeniedException", 5)
    with pytest.raises(CloudError, match="CreateSecret failed: injected") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.code == "AccessDeniedException" and len(counter) == 1
    assert KIND.discover(ctx) == []


def test_update_refusal_is_raised_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    counter = fail_first(ctx, "TagResource", "AccessDeniedException", 5)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        KIND.update(ctx, live, props(tags=TAGS | {"env": "prod"}), {"tags"})
    assert len(counter) == 1
