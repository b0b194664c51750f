"""aws_sns_topic_subscription against moto: create = discover, ownership through the topic, the
address convention, delete, and unconfirmed email subscriptions (moto confirms at once) by injection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.sns_topic_subscription import KIND, address_for

ADDR = "aws_sns_topic_subscription.email"
EMAIL = "ops@example.com"


@pytest.fixture
def topic(ctx: AwsContext) -> str:
    """The cluster's topic, tagged as aws_sns_topic.alarms."""
    tags = [
        {"Key": "byoc:cluster", "Value": "test"},
        {"Key": "byoc:address", "Value": "aws_sns_topic.alarms"},
    ]
    return str(ctx.client("sns").create_topic(Name="test-alarms", Tags=tags)["TopicArn"])


def props(topic: str, **over: Any) -> dict[str, Any]:
    return {"topic_arn": topic, "protocol": "email", "endpoint": EMAIL, **over}


def hook(ctx: AwsContext, op: str, fn: Callable[..., Any], when: str = "before-call") -> list[int]:
    """Register ``fn`` first for ``op`` (``*`` = every operation) on the SNS client; count calls."""
    calls: list[int] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(1)
        return fn(len(calls), **kwargs)

    ctx.client("sns").meta.events.register_first(f"{when}.sns" + ("" if op == "*" else f".{op}"), counted)
    return calls


def count(ctx: AwsContext, op: str) -> list[int]:
    return hook(ctx, op, lambda n, **kw: None)


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    def fail(n: int, **kwargs: Any) -> None:
        if n <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    return hook(ctx, op, fail)


def unconfirmed(ctx: AwsContext) -> None:
    """AWS's view of an unconfirmed email, which moto confirms at once: the topic's list shows
    "PendingConfirmation" instead of the ARN (Subscribe with ReturnSubscriptionArn still answers one)."""

    def listed(n: int, parsed: dict[str, Any], **kwargs: Any) -> None:
        for sub in parsed.get("Subscriptions", ()):
            sub["SubscriptionArn"] = "PendingConfirmation"

    hook(ctx, "ListSubscriptionsByTopic", listed, when="after-call")


def test_create_equals_discover(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))
    assert live.address == ADDR and live.id.startswith(f"{topic}:")
    assert live.props == props(topic)
    assert live.attr("pending_confirmation") is False
    assert KIND.discover(ctx) == [live]


def test_discovery_is_per_cluster(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))
    sns = ctx.client("sns")
    foreign = sns.create_topic(Name="someone-elses")["TopicArn"]
    sns.subscribe(TopicArn=foreign, Protocol="email", Endpoint="x@example.com")
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.discover(ctx) == [live]


def test_address_is_by_protocol() -> None:
    assert address_for("email") == ADDR
    assert address_for("email-json") == "aws_sns_topic_subscription.email_json"


def test_create_under_another_address_is_refused_before_any_call(ctx: AwsContext, topic: str) -> None:
    calls = hook(ctx, "*", lambda n, **kw: None)
    with pytest.raises(CloudError, match=r"must be addressed aws_sns_topic_subscription\.email"):
        KIND.create(ctx, 'aws_sns_topic_subscription.ops["a"]', props(topic))
    assert calls == []


def test_everything_forces_replacement() -> None:
    assert KIND.force_new == frozenset({"topic_arn", "protocol", "endpoint"})
    assert KIND.pins == frozenset() and KIND.holds_data is False


def test_unconfirmed_email_round_trips_with_its_pending_id(ctx: AwsContext, topic: str) -> None:
    unconfirmed(ctx)
    live = KIND.create(ctx, ADDR, props(topic))
    assert live.id == f"pending:{topic}:{EMAIL}"
    assert live.props == props(topic) and live.attr("pending_confirmation") is True
    assert KIND.discover(ctx) == [live]
    unsubscribes = count(ctx, "Unsubscribe")
    KIND.delete(ctx, live)  # AWS cannot unsubscribe it: it expires by itself
    assert unsubscribes == []


def test_pending_answer_to_subscribe_is_handled(ctx: AwsContext, topic: str) -> None:
    unconfirmed(ctx)
    hook(ctx, "Subscribe", lambda n, parsed, **kw: parsed.update(SubscriptionArn="pending confirmation"),
         when="after-call")
    live = KIND.create(ctx, ADDR, props(topic))
    assert live.id == f"pending:{topic}:{EMAIL}" and KIND.discover(ctx) == [live]


def test_create_waits_until_the_subscription_is_listed(ctx: AwsContext, topic: str) -> None:
    def lag(n: int, parsed: dict[str, Any], **kwargs: Any) -> None:
        if n <= 3:  # 1: look-before-create; 2-3: AWS has not listed the new subscription yet
            parsed["Subscriptions"] = []

    lists = hook(ctx, "ListSubscriptionsByTopic", lag, when="after-call")
    live = KIND.create(ctx, ADDR, props(topic))
    assert len(lists) == 4 and KIND.discover(ctx) == [live]


def test_create_does_not_subscribe_twice(ctx: AwsContext, topic: str) -> None:
    first = KIND.create(ctx, ADDR, props(topic))
    subscribes = count(ctx, "Subscribe")
    assert KIND.create(ctx, ADDR, props(topic)) == first
    assert subscribes == []


def test_just_deleted_subscriptions_are_skipped(ctx: AwsContext, topic: str) -> None:
    def deleted(n: int, parsed: dict[str, Any], **kwargs: Any) -> None:
        for sub in parsed.get("Subscriptions", ()):
            sub["SubscriptionArn"] = "Deleted"

    KIND.create(ctx, ADDR, props(topic))
    hook(ctx, "ListSubscriptionsByTopic", deleted, when="after-call")
    assert KIND.discover(ctx) == []


def test_delete_then_delete_again(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    calls = fail_first(ctx, "Unsubscribe", "NotFound", 1)  # AWS: the subscription does not exist
    KIND.delete(ctx, live)
    assert len(calls) == 1


def test_delete_after_the_topic_is_gone(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))
    ctx.client("sns").delete_topic(TopicArn=topic)  # AWS deletes its subscriptions with it
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []


def test_delete_waits_until_unlisted(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))
    sub = {"SubscriptionArn": live.id, "Protocol": "email", "Endpoint": EMAIL, "TopicArn": topic}

    def linger(n: int, parsed: dict[str, Any], **kwargs: Any) -> None:
        if n <= 2:  # still listed for a moment after Unsubscribe
            parsed["Subscriptions"] = [dict(sub)]

    lists = hook(ctx, "ListSubscriptionsByTopic", linger, when="after-call")
    KIND.delete(ctx, live)
    assert len(lists) == 3


def test_delete_raises_other_errors_at_once(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))
    calls = fail_first(ctx, "Unsubscribe", "AuthorizationError", 5)
    with pytest.raises(ClientError, match="AuthorizationError"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


# -- listing only when there is something to list (a plain plan: the engine sets ctx.known) -------
def discover_with_topic(ctx: AwsContext) -> list[Any]:
    """Both SNS kinds in one discovery pass, as the engine runs them."""
    from byoc.resources.sns_topic import KIND as TOPIC

    with ctx.discovery_pass():
        TOPIC.discover(ctx)
        return KIND.discover(ctx)


def test_topic_without_subscriptions_is_not_listed(ctx: AwsContext, topic: str) -> None:
    ctx.known = {"aws_sns_topic_subscription": {}}
    lists, reads = count(ctx, "ListSubscriptionsByTopic"), count(ctx, "GetTopicAttributes")
    assert discover_with_topic(ctx) == []
    assert lists == [] and len(reads) == 1  # the topic kind's read, shared


def test_subscription_nobody_expects_is_found_through_the_topic_counts(ctx: AwsContext, topic: str) -> None:
    ctx.client("sns").subscribe(TopicArn=topic, Protocol="email", Endpoint="someone@example.com")
    ctx.known = {"aws_sns_topic_subscription": {}}
    lists = count(ctx, "ListSubscriptionsByTopic")
    assert [x.props["endpoint"] for x in discover_with_topic(ctx)] == ["someone@example.com"]
    assert len(lists) == 1


def test_expected_subscription_is_listed_whatever_the_counts_say(ctx: AwsContext, topic: str) -> None:
    live = KIND.create(ctx, ADDR, props(topic))

    def lagging(parsed: dict[str, Any], **kwargs: Any) -> None:
        parsed["Attributes"].update(SubscriptionsConfirmed="0", SubscriptionsPending="0")

    # registered last: after the hook that makes moto count like AWS (see tests.awsrealism)
    ctx.client("sns").meta.events.register("after-call.sns.GetTopicAttributes", lagging)
    ctx.known = {"aws_sns_topic_subscription": {}}
    assert discover_with_topic(ctx) == []  # what a lagging count would hide …
    ctx.known = {"aws_sns_topic_subscription": {"email": frozenset()}}
    assert discover_with_topic(ctx) == [live]  # … but the spec or state has one
    ctx.known = None
    assert discover_with_topic(ctx) == [live]  # and a full audit always lists
