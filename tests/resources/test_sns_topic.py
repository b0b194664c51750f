"""aws_sns_topic against moto: create = discover, ownership, key and tags in place, delete, and
the AWS behaviours moto lacks (name clashes on CreateTopic, conflicts) by injection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.resources.sns_topic import KIND

ADDR = "aws_sns_topic.alarms"
NAME = "test-alarms"
ARN = f"arn:aws:sns:us-west-2:123456789012:{NAME}"


def tags(**extra: str) -> dict[str, str]:
    return {"Name": NAME, "byoc:cluster": "test", "byoc:address": ADDR, **extra}


def props(**over: Any) -> dict[str, Any]:
    return {"name": NAME, "kms_master_key_id": "alias/aws/sns", "tags": tags(team="a"), **over}


def hook(ctx: AwsContext, op: str, fn: Callable[..., Any], when: str = "before-call",
         service: str = "sns") -> list[int]:
    """Register ``fn`` first for ``op`` on the client of ``service``; count the calls."""
    calls: list[int] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(1)
        return fn(len(calls), **kwargs)

    client = ctx.client(service)
    client.meta.events.register_first(f"{when}.{client.meta.service_model.service_id.hyphenize()}.{op}",
                                      counted)
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int, message: str = "injected") -> list[int]:
    def fail(n: int, **kwargs: Any) -> None:
        if n <= times:
            raise ClientError({"Error": {"Code": code, "Message": message}}, op)

    return hook(ctx, op, fail)


def raw_tags(ctx: AwsContext) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in ctx.client("sns").list_tags_for_resource(ResourceArn=ARN)["Tags"]}


@pytest.mark.parametrize("key", ["alias/aws/sns", None])
def test_create_equals_discover(ctx: AwsContext, key: str | None) -> None:
    live = KIND.create(ctx, ADDR, props(kms_master_key_id=key))
    assert live.address == ADDR and live.id == ARN and live.attr("arn") == ARN
    assert live.props == props(kms_master_key_id=key)
    assert KIND.discover(ctx) == [live]


def test_discovery_is_per_cluster_and_without_an_address_unmanaged(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    sns = ctx.client("sns")
    sns.create_topic(Name="someone-elses")
    arn = sns.create_topic(Name="no-address", Tags=[{"Key": "byoc:cluster", "Value": "test"}])["TopicArn"]
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    found = {x.address: x.id for x in KIND.discover(ctx)}
    assert found == {ADDR: live.id, f'aws_sns_topic.unmanaged["{arn}"]': arn}


def test_topic_listed_by_a_stale_tagging_index_is_skipped(ctx: AwsContext) -> None:
    # the tagging index lags in AWS: GetTopicAttributes then says NotFound
    live = KIND.create(ctx, ADDR, props())
    stale = {
        "ResourceARN": "arn:aws:sns:us-west-2:123456789012:test-gone",
        "Tags": [
            {"Key": "byoc:cluster", "Value": "test"},
            {"Key": "byoc:address", "Value": "aws_sns_topic.gone"},
        ],
    }
    hook(ctx, "GetResources", lambda n, parsed, **kw: parsed["ResourceTagMappingList"].append(stale),
         when="after-call", service="resourcegroupstaggingapi")
    reads = hook(ctx, "GetTopicAttributes", lambda n, **kw: None)
    assert KIND.discover(ctx) == [live]
    assert len(reads) == 2  # one per topic the index lists


def test_update_key_and_tags_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    new = props(kms_master_key_id="alias/test-sns", tags=tags(env="prod"))
    updated = KIND.update(ctx, live, new, {"kms_master_key_id", "tags"})
    assert updated.props == new and updated.id == live.id
    assert KIND.discover(ctx) == [updated]
    plain = props(kms_master_key_id=None, tags=tags(env="prod"))
    updated = KIND.update(ctx, updated, plain, {"kms_master_key_id"})
    assert KIND.discover(ctx) == [updated] and updated.props == plain


def test_name_change_replaces() -> None:
    assert KIND.force_new == frozenset({"name"})
    assert KIND.pins == frozenset() and KIND.holds_data is False


def test_create_carries_on_with_own_topic_made_with_other_tags(ctx: AwsContext) -> None:
    # AWS refuses CreateTopic for an existing name with different tags (moto returns the topic):
    # an earlier run's topic that lacks a tag must be adopted and fixed, not reported
    ctx.client("sns").create_topic(Name=NAME, Tags=[{"Key": k, "Value": v} for k, v in tags().items()])
    calls = fail_first(ctx, "CreateTopic", "InvalidParameter", 1,
                       "Invalid parameter: Tags Reason: Topic already exists with different tags")
    live = KIND.create(ctx, ADDR, props())
    assert len(calls) == 2  # refused, then the bare CreateTopic that returns the existing ARN
    assert live.props == props() and raw_tags(ctx) == tags(team="a")
    assert KIND.discover(ctx) == [live]


def test_create_refuses_someone_elses_topic_with_the_name(ctx: AwsContext) -> None:
    ctx.client("sns").create_topic(Name=NAME, Tags=[{"Key": "owner", "Value": "x"}])
    fail_first(ctx, "CreateTopic", "InvalidParameter", 1,
               "Invalid parameter: Tags Reason: Topic already exists with different tags")
    with pytest.raises(ClientError, match="already exists with different tags"):
        KIND.create(ctx, ADDR, props())
    assert raw_tags(ctx) == {"owner": "x"}


def test_create_raises_other_invalid_parameters_at_once(ctx: AwsContext) -> None:
    calls = fail_first(ctx, "CreateTopic", "InvalidParameter", 5, "Invalid parameter: Topic Name")
    with pytest.raises(ClientError, match="Topic Name"):
        KIND.create(ctx, ADDR, props())
    assert len(calls) == 1


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)


def test_delete_of_missing_topic_reported_not_found_is_success(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    calls = fail_first(ctx, "DeleteTopic", "NotFound", 1)
    KIND.delete(ctx, live)
    assert len(calls) == 1


def test_delete_retries_concurrent_access(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteTopic", "ConcurrentAccess", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteTopic", "AuthorizationError", 5)
    with pytest.raises(ClientError, match="AuthorizationError"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
