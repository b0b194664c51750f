"""aws_cloudwatch_log_group against moto: create = discover, ownership, in-place changes, delete,
and the AWS behaviours moto lacks (retention validation, conflicts, KMS association) by injection."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.cloudwatch_log_group import KEY_SETTLE_SECONDS, KIND, RETENTION_DAYS

ADDR = "aws_cloudwatch_log_group.proton"
NAME = "/aws/proton/test"
KEY = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"


def props(**over: Any) -> dict[str, Any]:
    base = {
        "name": NAME,
        "retention_in_days": 30,
        "kms_key_id": None,
        "tags": {"Name": "test-logs", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


def hook(ctx: AwsContext, op: str, fn: Callable[..., Any], when: str = "before-call") -> list[int]:
    """Register ``fn`` first on the logs client for ``op`` (``*`` = every operation); count calls."""
    calls: list[int] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(1)
        return fn(len(calls), **kwargs)

    event = f"{when}.cloudwatch-logs" + ("" if op == "*" else f".{op}")
    ctx.client("logs").meta.events.register_first(event, counted)
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    def fail(n: int, **kwargs: Any) -> None:
        if n <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    return hook(ctx, op, fail)


def raw(ctx: AwsContext) -> list[dict[str, Any]]:
    return list(ctx.client("logs").describe_log_groups(logGroupNamePrefix=NAME)["logGroups"])


@pytest.mark.parametrize("key", [None, KEY])
def test_create_equals_discover(ctx: AwsContext, key: str | None) -> None:
    live = KIND.create(ctx, ADDR, props(kms_key_id=key))
    assert live.address == ADDR and live.id == NAME
    assert live.props == props(kms_key_id=key)
    assert live.attr("arn") == f"arn:aws:logs:us-west-2:123456789012:log-group:{NAME}"
    assert live.attr("arn_wildcard") == live.attr("arn") + ":*"
    assert KIND.discover(ctx) == [live]


def test_create_sets_retention_while_waiting_for_the_group_to_show(ctx: AwsContext) -> None:
    calls: Counter[str] = Counter()
    hook(ctx, "*", lambda n, model, **kw: calls.update([model.name]))
    barrier = threading.Barrier(2, timeout=10)
    met: list[str] = []

    def meet(n: int, model: Any, **kw: Any) -> None:
        if n == 1:  # the first of each: both start before either finishes, or neither meets
            try:
                barrier.wait()
                met.append(model.name)
            except threading.BrokenBarrierError:
                pass

    hook(ctx, "PutRetentionPolicy", meet)
    hook(ctx, "DescribeLogGroups", meet)
    live = KIND.create(ctx, ADDR, props())
    assert sorted(met) == ["DescribeLogGroups", "PutRetentionPolicy"]
    assert calls == {"CreateLogGroup": 1, "PutRetentionPolicy": 1, "DescribeLogGroups": 1}
    assert KIND.discover(ctx) == [live]


def test_create_shows_the_retention_set_though_the_read_came_first(ctx: AwsContext) -> None:
    def before_retention(n: int, parsed: dict[str, Any], **kw: Any) -> None:
        if n == 1:  # what AWS answers when the describe is served before PutRetentionPolicy
            for group in parsed.get("logGroups", []):
                group.pop("retentionInDays", None)

    reads = hook(ctx, "DescribeLogGroups", before_retention, when="after-call")
    live = KIND.create(ctx, ADDR, props())
    assert len(reads) == 1 and live.props == props()
    assert KIND.discover(ctx) == [live]


def test_a_retention_failure_fails_the_create_and_a_rerun_adopts_the_group(ctx: AwsContext) -> None:
    puts = fail_first(ctx, "PutRetentionPolicy", "AccessDeniedException", 1)
    with pytest.raises(ClientError, match=r"AccessDeniedException.*PutRetentionPolicy"):
        KIND.create(ctx, ADDR, props())
    assert len(puts) == 1 and "retentionInDays" not in raw(ctx)[0]
    (found,) = KIND.discover(ctx)  # tagged in CreateLogGroup: found under its address
    assert found.address == ADDR and found.props == props(retention_in_days=None)
    live = KIND.create(ctx, ADDR, props())
    assert len(puts) == 2 and live.props == props() and raw(ctx)[0]["retentionInDays"] == 30
    assert KIND.discover(ctx) == [live]


def test_no_retention_means_never_expire(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props(retention_in_days=None))
    assert "retentionInDays" not in raw(ctx)[0]
    assert KIND.discover(ctx) == [live] and live.props["retention_in_days"] is None


def test_discovery_is_per_cluster_and_without_an_address_unmanaged(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName="/aws/proton/untagged")
    logs.create_log_group(logGroupName="/aws/proton/no-address", tags={"byoc:cluster": "test"})
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    found = {x.address: x.id for x in KIND.discover(ctx)}
    unmanaged = 'aws_cloudwatch_log_group.unmanaged["/aws/proton/no-address"]'
    assert found == {ADDR: live.id, unmanaged: "/aws/proton/no-address"}


def test_discovery_reads_groups_in_one_describe_by_common_prefix(ctx: AwsContext) -> None:
    a = KIND.create(ctx, ADDR, props())
    b_addr = "aws_cloudwatch_log_group.audit"
    b = KIND.create(ctx, b_addr, props(name="/aws/proton/test-audit", tags={"byoc:cluster": "test",
                                                                           "byoc:address": b_addr}))
    describes = hook(ctx, "DescribeLogGroups", lambda n, **kw: None)
    with ctx.discovery_pass():
        assert sorted(KIND.discover(ctx), key=lambda v: v.id) == [a, b]
    assert len(describes) == 1


def test_discovery_without_a_common_prefix_describes_each_name(ctx: AwsContext) -> None:
    a = KIND.create(ctx, ADDR, props())
    b_addr = "aws_cloudwatch_log_group.other"
    b_tags = {"byoc:cluster": "test", "byoc:address": b_addr}
    b = KIND.create(ctx, b_addr, props(name="/other/x", tags=b_tags))
    describes = hook(ctx, "DescribeLogGroups", lambda n, **kw: None)
    assert sorted(KIND.discover(ctx), key=lambda v: v.id) == [a, b]
    assert len(describes) == 2


def test_update_retention_and_tags_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    tags = {k: v for k, v in props()["tags"].items() if k != "team"} | {"env": "prod", "Name": "renamed"}
    new = props(retention_in_days=365, tags=tags)
    updated = KIND.update(ctx, live, new, {"retention_in_days", "tags"})
    assert updated.props == new and updated.id == live.id and updated.attrs == live.attrs
    assert KIND.discover(ctx) == [updated]
    forever = props(retention_in_days=None, tags=tags)
    updated = KIND.update(ctx, updated, forever, {"retention_in_days"})
    assert KIND.discover(ctx) == [updated] and updated.props == forever


def test_update_kms_key_associates_and_disassociates(ctx: AwsContext) -> None:
    # moto 5.2 does not implement AssociateKmsKey/DisassociateKmsKey (NotImplementedError): the
    # hook answers AWS's empty success in moto's place and records what byoc asked for.
    sent: list[tuple[str, dict[str, Any]]] = []

    def answer(op: str) -> Callable[..., Any]:
        def fn(n: int, params: dict[str, Any], **kwargs: Any) -> Any:
            sent.append((op, json.loads(params["body"])))
            return AWSResponse("https://logs", 200, {}, None), {}

        return fn

    hook(ctx, "AssociateKmsKey", answer("associate"))
    hook(ctx, "DisassociateKmsKey", answer("disassociate"))
    live = KIND.create(ctx, ADDR, props())
    keyed = KIND.update(ctx, live, props(kms_key_id=KEY), {"kms_key_id"})
    assert keyed.props == props(kms_key_id=KEY)
    plain = KIND.update(ctx, keyed, props(), {"kms_key_id"})
    assert plain.props == props()
    assert sent == [
        ("associate", {"logGroupName": NAME, "kmsKeyId": KEY}),
        ("disassociate", {"logGroupName": NAME}),
    ]


KEY_DENIED = f"The specified KMS key does not exist or is not allowed to be used with Arn '{NAME}'"


def deny_first(ctx: AwsContext, op: str, message: str, times: int) -> list[int]:
    def deny(n: int, **kwargs: Any) -> None:
        if n <= times:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, op)

    return hook(ctx, op, deny)


def test_create_with_a_key_waits_while_its_policy_reaches_cloudwatch_logs(ctx: AwsContext) -> None:
    # AWS: a key just created, or its policy just changed, is refused for a little while
    calls = deny_first(ctx, "CreateLogGroup", KEY_DENIED, 2)
    live = KIND.create(ctx, ADDR, props(kms_key_id=KEY))
    assert len(calls) == 3 and raw(ctx)[0]["kmsKeyId"] == KEY and live.props == props(kms_key_id=KEY)


def test_associate_waits_while_the_key_policy_settles(ctx: AwsContext) -> None:
    sent: list[int] = []

    def answer(n: int, **kwargs: Any) -> Any:
        if n <= 2:
            error = {"Error": {"Code": "AccessDeniedException", "Message": KEY_DENIED}}
            raise ClientError(error, "AssociateKmsKey")
        sent.append(n)
        return AWSResponse("https://logs", 200, {}, None), {}  # moto 5.2 lacks AssociateKmsKey

    live = KIND.create(ctx, ADDR, props())
    hook(ctx, "AssociateKmsKey", answer)
    assert KIND.update(ctx, live, props(kms_key_id=KEY), {"kms_key_id"}).props == props(kms_key_id=KEY)
    assert sent == [3]


def test_other_access_denied_is_raised_at_once(ctx: AwsContext) -> None:
    calls = deny_first(ctx, "CreateLogGroup", "User is not authorized to perform: logs:CreateLogGroup", 5)
    with pytest.raises(ClientError, match="not authorized"):
        KIND.create(ctx, ADDR, props(kms_key_id=KEY))
    assert len(calls) == 1 and raw(ctx) == []


def test_a_key_refused_for_good_fails_after_the_settle_time(ctx: AwsContext, monkeypatch: Any) -> None:
    import types

    import byoc.aws.context as context

    now = [0.0]  # a clock that moves only by what the retries sleep
    clock = types.SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(context, "time", clock)
    monkeypatch.setattr(ctx, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    calls = deny_first(ctx, "CreateLogGroup", KEY_DENIED, 1000)
    with pytest.raises(ClientError, match="KMS key"):
        KIND.create(ctx, ADDR, props(kms_key_id=KEY))
    assert 1 < len(calls) < 20 and now[0] <= KEY_SETTLE_SECONDS and raw(ctx) == []


def test_name_change_replaces() -> None:
    assert KIND.force_new == frozenset({"name"})
    assert KIND.pins == frozenset() and KIND.holds_data is False


@pytest.mark.parametrize("days", [0, 2, 31, 10000])
def test_invalid_retention_is_refused_before_any_call(ctx: AwsContext, days: int) -> None:
    calls = hook(ctx, "*", lambda n, **kw: None)
    with pytest.raises(CloudError, match="retention_in_days must be one of 1, 3, 5"):
        KIND.create(ctx, ADDR, props(retention_in_days=days))
    assert calls == [] and days not in RETENTION_DAYS


def test_invalid_retention_or_key_in_update_is_refused_before_any_call(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = hook(ctx, "*", lambda n, **kw: None)
    with pytest.raises(CloudError, match=r"got 45\)"):
        KIND.update(ctx, live, props(retention_in_days=45), {"retention_in_days"})
    with pytest.raises(CloudError, match="must be a KMS key ARN"):
        KIND.update(ctx, live, props(kms_key_id="alias/logs"), {"kms_key_id"})
    assert calls == []
    assert raw(ctx)[0]["retentionInDays"] == 30


def test_create_carries_on_with_own_half_made_group(ctx: AwsContext) -> None:
    # a crash after CreateLogGroup: the group exists with our tags but no retention yet
    tags = {k: v for k, v in props()["tags"].items() if k != "team"}
    ctx.client("logs").create_log_group(logGroupName=NAME, tags=tags)
    creates = fail_first(ctx, "CreateLogGroup", "unused", 0)
    live = KIND.create(ctx, ADDR, props())
    assert len(creates) == 1  # moto raised ResourceAlreadyExistsException, as AWS does
    assert live.props == props()
    assert KIND.discover(ctx) == [live]


def test_create_refuses_someone_elses_group_with_the_name(ctx: AwsContext) -> None:
    ctx.client("logs").create_log_group(logGroupName=NAME, tags={"owner": "someone"})
    with pytest.raises(ClientError) as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert "retentionInDays" not in raw(ctx)[0]


def test_create_retries_conflicting_operation(ctx: AwsContext) -> None:
    calls = fail_first(ctx, "PutRetentionPolicy", "OperationAbortedException", 2)
    live = KIND.create(ctx, ADDR, props())
    assert len(calls) == 3 and KIND.discover(ctx) == [live]


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == [] and raw(ctx) == []
    deletes = hook(ctx, "DeleteLogGroup", lambda n, **kw: None)
    KIND.delete(ctx, live)  # ResourceNotFoundException: already gone
    assert len(deletes) == 1


def test_delete_retries_conflicting_operation(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteLogGroup", "OperationAbortedException", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteLogGroup", "AccessDeniedException", 5)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
