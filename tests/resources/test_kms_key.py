"""aws_kms_key against moto: create = discover, alias/rotation/description/policy/tags in place, delete."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.kms_key import KIND

ADDR = "aws_kms_key.main"
ALIAS = "alias/byoc/test"
ROOT = {"Sid": "EnableIAMUserPermissions", "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::123456789012:root"]}, "Action": ["kms:*"], "Resource": ["*"]}
LOGS = {"Sid": "CloudWatchLogs", "Effect": "Allow",
        "Principal": {"Service": ["logs.us-west-2.amazonaws.com"]},
        "Action": ["kms:Decrypt*", "kms:Encrypt*"], "Resource": ["*"],
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [
            "arn:aws:logs:us-west-2:123456789012:log-group:/aws/proton/test"]}}}
POLICY = {"Version": "2012-10-17", "Statement": [ROOT, LOGS]}


def tags(address: str = ADDR, **extra: str) -> dict[str, str]:
    return {"Name": "test", "byoc:cluster": "test", "byoc:address": address, **extra}


def props(**over: Any) -> dict[str, Any]:
    base = {
        "description": "byoc test: data key",
        "enable_key_rotation": True,
        "deletion_window_in_days": 30,
        "alias": ALIAS,
        "policy": POLICY,
        "tags": tags(team="a"),
    }
    return {**base, **over}


def count(ctx: AwsContext, service: str, *ops: str) -> dict[str, int]:
    """Count calls of each operation of ``service`` from now on."""
    calls = dict.fromkeys(ops, 0)

    def hook(model: Any, **kw: Any) -> None:
        if model.name in calls:
            calls[model.name] += 1

    ctx.client(service).meta.events.register_first(f"before-call.{service}", hook)
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int, then: Any = None) -> list[int]:
    """Make ``op`` raise ``code`` for its first ``times`` calls (after running ``then``)."""
    calls: list[int] = []

    def hook(**kw: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            if then is not None:
                then()
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    ctx.client("kms").meta.events.register_first(f"before-call.kms.{op}", hook)
    return calls


def report_state(ctx: AwsContext, op: str, state: str, times: int) -> list[int]:
    """Make the first ``times`` successful responses of ``op`` report KeyState ``state``."""
    calls: list[int] = []

    def hook(parsed: dict[str, Any], **kw: Any) -> None:
        if "KeyMetadata" not in parsed:  # an error response
            return
        calls.append(1)
        if len(calls) <= times:
            parsed["KeyMetadata"]["KeyState"] = state

    ctx.client("kms").meta.events.register_first(f"after-call.kms.{op}", hook)
    return calls


def raw_key(address: str, cluster: str = "test") -> str:
    tags = [{"TagKey": "byoc:cluster", "TagValue": cluster}, {"TagKey": "byoc:address", "TagValue": address}]
    return str(boto3.client("kms", region_name="us-west-2").create_key(Tags=tags)["KeyMetadata"]["KeyId"])


def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.address == ADDR and live.props == props()
    assert KIND.discover(ctx) == [live]
    assert live.attr("key_id") == live.id
    assert live.attr("arn") == f"arn:aws:kms:us-west-2:123456789012:key/{live.id}"
    kms = ctx.client("kms")
    assert kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyId"] == live.id
    assert kms.get_key_rotation_status(KeyId=live.id)["KeyRotationEnabled"] is True
    assert json.loads(kms.get_key_policy(KeyId=live.id, PolicyName="default")["Policy"]) == POLICY


def test_a_key_without_a_policy_gets_kmss_default_and_discovery_reports_it(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(policy=None))
    assert live.props["policy"] is None  # not managed
    (found,) = KIND.discover(ctx)
    statement = found.props["policy"]["Statement"][0]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]}
    assert statement["Action"] == ["kms:*"]
    calls = count(ctx, "kms", "PutKeyPolicy")
    KIND.update(ctx, found, props(policy=None), {"policy"})  # None never overwrites the live policy
    assert calls == {"PutKeyPolicy": 0}


def meet(ctx: AwsContext, service: str, *ops: str) -> list[str]:
    """Hold the first call of each of ``ops`` until all of them have started; the names of those
    that met (all of them only when the calls were made side by side, none when one after another)."""
    barrier = threading.Barrier(len(ops), timeout=10)
    seen: set[str] = set()
    met: list[str] = []

    def hook(model: Any, **kw: Any) -> None:
        if model.name not in ops or model.name in seen:
            return
        seen.add(model.name)
        try:
            barrier.wait()
            met.append(model.name)
        except threading.BrokenBarrierError:
            pass

    ctx.client(service).meta.events.register_first(f"before-call.{service}", hook)
    return met


def test_create_claims_the_alias_and_enables_rotation_side_by_side(ctx: AwsContext) -> None:
    calls: Counter[str] = Counter()
    ctx.client("kms").meta.events.register_first(
        "before-call.kms", lambda model, **kw: calls.update([model.name])
    )
    met = meet(ctx, "kms", "CreateAlias", "EnableKeyRotation")
    live = KIND.create(ctx, ADDR, props())
    assert sorted(met) == ["CreateAlias", "EnableKeyRotation"]
    # no more calls than one after another: the look by alias, the key, its alias and rotation
    assert calls == {"DescribeKey": 1, "CreateKey": 1, "CreateAlias": 1, "EnableKeyRotation": 1}
    assert KIND.discover(ctx) == [live]


def test_create_without_alias_or_rotation_makes_only_the_key(ctx: AwsContext) -> None:
    calls: Counter[str] = Counter()
    ctx.client("kms").meta.events.register_first(
        "before-call.kms", lambda model, **kw: calls.update([model.name])
    )
    live = KIND.create(ctx, ADDR, props(alias="", enable_key_rotation=False))
    assert calls == {"CreateKey": 1}
    assert live.props == props(alias="", enable_key_rotation=False) and KIND.discover(ctx) == [live]


def test_a_rotation_failure_fails_the_create_and_a_rerun_adopts_the_key(ctx: AwsContext) -> None:
    # a 5xx that outlasted the SDK's retries: the alias, claimed side by side, is in place
    rotations = fail_first(ctx, "EnableKeyRotation", "KMSInternalException", 1)
    with pytest.raises(ClientError, match=r"KMSInternalException.*EnableKeyRotation"):
        KIND.create(ctx, ADDR, props())
    assert len(rotations) == 1
    (found,) = KIND.discover(ctx)
    assert found.props == props(enable_key_rotation=False)
    calls = count(ctx, "kms", "CreateKey", "EnableKeyRotation")
    live = KIND.create(ctx, ADDR, props())  # the re-run finds our key by its alias
    assert calls == {"CreateKey": 0, "EnableKeyRotation": 1}
    assert live.id == found.id and live.props == props() and KIND.discover(ctx) == [live]


def test_discovery_per_pass_and_per_cluster(ctx: AwsContext) -> None:
    a = KIND.create(ctx, ADDR, props())
    b = KIND.create(
        ctx,
        "aws_kms_key.b",
        props(alias="alias/byoc/b", enable_key_rotation=False, tags=tags("aws_kms_key.b")),
    )
    raw_key("aws_kms_key.x", cluster="other")
    kms = count(ctx, "kms", "DescribeKey", "GetKeyRotationStatus", "GetKeyPolicy", "ListAliases",
                "ListResourceTags")
    index = count(ctx, "resourcegroupstaggingapi", "GetResources")
    with ctx.discovery_pass():
        assert sorted(KIND.discover(ctx), key=lambda v: v.address) == [b, a]
        KIND.discover(ctx)  # a second read in the pass shares the index and the aliases
    assert index == {"GetResources": 1}
    assert kms == {"DescribeKey": 4, "GetKeyRotationStatus": 4, "GetKeyPolicy": 4, "ListAliases": 1,
                   "ListResourceTags": 0}
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert [v.address for v in KIND.discover(other)] == ["aws_kms_key.x"]


def test_discovery_skips_disabled_and_pending_deletion_keys(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    kms = ctx.client("kms")
    kms.disable_key(KeyId=live.id)
    assert KIND.discover(ctx) == []
    kms.enable_key(KeyId=live.id)
    assert KIND.discover(ctx) == [live]
    kms.schedule_key_deletion(KeyId=live.id, PendingWindowInDays=7)  # moto keeps it in the index
    assert KIND.discover(ctx) == []


def test_update_each_prop_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    steps: list[tuple[dict[str, Any], str]] = [
        ({"description": "changed"}, "UpdateKeyDescription"),
        ({"enable_key_rotation": False}, "DisableKeyRotation"),
        ({"enable_key_rotation": True}, "EnableKeyRotation"),
        ({"alias": "alias/byoc/renamed"}, "CreateAlias"),
        ({"policy": {**POLICY, "Statement": [ROOT]}}, "PutKeyPolicy"),
        ({"tags": tags(env="prod")}, "TagResource"),
    ]
    current = props()
    for change, op in steps:
        current = {**current, **change}
        calls = count(ctx, "kms", op)
        live = KIND.update(ctx, live, current, set(change))
        assert calls == {op: 1} and live.props == current
        assert KIND.discover(ctx) == [live]
    aliases = [a["AliasName"] for a in ctx.client("kms").list_aliases(KeyId=live.id)["Aliases"]]
    assert aliases == ["alias/byoc/renamed"]  # the old alias went


def test_deletion_window_changes_nothing_in_aws(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls: list[str] = []
    ctx.client("kms").meta.events.register_first(
        "before-call.kms", lambda model, **kw: calls.append(model.name)
    )
    live = KIND.update(ctx, live, props(deletion_window_in_days=7), {"deletion_window_in_days"})
    assert calls == [] and live.props["deletion_window_in_days"] == 7
    assert KIND.discover(ctx)[0].props["deletion_window_in_days"] == 30  # never read back


def test_rules() -> None:
    assert KIND.holds_data is True
    assert KIND.force_new == frozenset()
    assert KIND.pins == frozenset()
    assert KIND.kind == "aws_kms_key" and KIND.service == "kms"


def test_create_waits_until_enabled(ctx: AwsContext) -> None:
    report_state(ctx, "CreateKey", "Creating", 1)
    polls = report_state(ctx, "DescribeKey", "Creating", 2)
    live = KIND.create(ctx, ADDR, props())
    assert len(polls) == 3  # two "Creating" polls, then "Enabled"
    assert KIND.discover(ctx) == [live]


def test_create_retries_not_found_while_the_new_key_propagates(ctx: AwsContext) -> None:
    alias_calls = fail_first(ctx, "CreateAlias", "NotFoundException", 2)
    live = KIND.create(ctx, ADDR, props())
    assert len(alias_calls) == 3 and KIND.discover(ctx) == [live]


def test_create_raises_other_errors_at_once(ctx: AwsContext) -> None:
    calls = fail_first(ctx, "CreateAlias", "AccessDeniedException", 1)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        KIND.create(ctx, ADDR, props())
    assert len(calls) == 1
    # the key is tagged in CreateKey, so discovery finds it (rotation, enabled side by side, is
    # on) and a later run adds the alias
    (found,) = KIND.discover(ctx)
    assert found.props == props(alias="")
    live = KIND.update(ctx, found, props(), {"alias"})
    assert KIND.discover(ctx) == [live] and live.props == props()


def test_create_adopts_our_key_already_holding_the_alias(ctx: AwsContext) -> None:
    kms = ctx.client("kms")
    key_id = raw_key(ADDR)  # a crashed run: key and alias made, rotation and tags not yet
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
    calls = count(ctx, "kms", "CreateKey", "EnableKeyRotation", "UpdateKeyDescription", "TagResource",
                  "PutKeyPolicy")
    live = KIND.create(ctx, ADDR, props())
    assert calls == {"CreateKey": 0, "EnableKeyRotation": 1, "UpdateKeyDescription": 1, "TagResource": 1,
                     "PutKeyPolicy": 1}
    assert live.id == key_id and live.props == props() and KIND.discover(ctx) == [live]


def test_create_takes_the_alias_over_from_our_dead_key(ctx: AwsContext) -> None:
    old = KIND.create(ctx, ADDR, props())
    ctx.client("kms").disable_key(KeyId=old.id)
    calls = count(ctx, "kms", "CreateAlias", "UpdateAlias")
    live = KIND.create(ctx, ADDR, props())
    assert live.id != old.id and calls == {"CreateAlias": 0, "UpdateAlias": 1}
    assert KIND.discover(ctx) == [live]


def test_create_refuses_an_alias_that_is_not_ours(ctx: AwsContext) -> None:
    kms = ctx.client("kms")
    foreign = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=foreign)
    calls = count(ctx, "kms", "CreateKey")
    with pytest.raises(CloudError, match="does not manage") as err:
        KIND.create(ctx, ADDR, props())
    assert calls == {"CreateKey": 0} and err.value.aws_id == foreign


def test_delete_schedules_deletion_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(deletion_window_in_days=7))
    windows: list[int] = []
    ctx.client("kms").meta.events.register_first(
        "before-parameter-build.kms.ScheduleKeyDeletion",
        lambda params, **kw: windows.append(params["PendingWindowInDays"]),
    )
    KIND.delete(ctx, live)
    assert windows == [7] and KIND.discover(ctx) == []
    assert ctx.client("kms").list_aliases(KeyId=live.id)["Aliases"] == []
    KIND.delete(ctx, live)  # pending deletion = gone: no second schedule
    assert windows == [7]


def test_delete_of_a_key_a_concurrent_run_scheduled_is_success(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    other = boto3.client("kms", region_name="us-west-2")
    # real AWS answers KMSInvalidStateException for a key already pending deletion
    calls = fail_first(
        ctx,
        "ScheduleKeyDeletion",
        "KMSInvalidStateException",
        1,
        then=lambda: other.schedule_key_deletion(KeyId=live.id, PendingWindowInDays=7),
    )
    KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "ScheduleKeyDeletion", "KMSInvalidStateException", 5)
    with pytest.raises(ClientError, match="KMSInvalidStateException"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and [v.id for v in KIND.discover(ctx)] == [live.id]
