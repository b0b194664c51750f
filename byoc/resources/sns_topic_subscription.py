"""``aws_sns_topic_subscription``: one subscription (e.g. the operators' email) of the cluster's topic.

Subscriptions cannot be tagged, so ownership comes from the topic: every live subscription of
a topic the cluster owns is the cluster's, and its address is by convention
``aws_sns_topic_subscription.<protocol>`` (``-`` as ``_``: ``email-json`` → ``email_json``), with
no key — one subscription per protocol. A second one of the same protocol (say, an address
someone added by hand) is reported by discovery as a duplicate address, never silently
adopted or replaced. The id is the SubscriptionArn, or ``pending:<topic_arn>:<endpoint>``
while an email is unconfirmed (AWS then lists ``PendingConfirmation`` instead of an ARN).
A plan whose spec and state have no subscription lists a topic's subscriptions only when the
topic's attributes (read once for both kinds) count any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import unless_gone
from byoc.errors import CloudError
from byoc.model import Live, make_address
from byoc.resources._ec2 import wait_gone
from byoc.resources._monitoring import CONFLICT_CODES
from byoc.resources._tagging import tagged
from byoc.resources.base import ResourceType
from byoc.resources.sns_topic import topic_attributes

KIND_NAME = "aws_sns_topic_subscription"
#: what AWS lists instead of an ARN: unconfirmed ("pending confirmation" is Subscribe's spelling
#: without ReturnSubscriptionArn), or unsubscribed a moment ago
_PENDING = frozenset({"PendingConfirmation", "pending confirmation"})
_DELETED = "Deleted"
#: GetTopicAttributes' counts of the subscriptions ListSubscriptionsByTopic would show
_COUNTS = ("SubscriptionsConfirmed", "SubscriptionsPending")


def address_for(protocol: str) -> str:
    """The address of the topic's subscription with ``protocol`` (the naming convention)."""
    return make_address(KIND_NAME, protocol.replace("-", "_"))


def pending_id(topic_arn: str, endpoint: str) -> str:
    return f"pending:{topic_arn}:{endpoint}"


class SnsTopicSubscription(ResourceType):
    kind = KIND_NAME
    service = "sns"
    force_new = frozenset({"topic_arn", "protocol", "endpoint"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        topics = [t.arn for t in tagged(ctx, "sns") if ":" not in t.resource]
        return [self._live(s) for arn in topics if _worth_listing(ctx, arn) for s in _subscriptions(ctx, arn)]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        if address != address_for(props["protocol"]):
            raise CloudError(
                f"an SNS subscription with protocol {props['protocol']} must be addressed "
                f"{address_for(props['protocol'])}: subscriptions cannot be tagged, so discovery "
                "names them by protocol",
                address=address,
                code="InvalidAddress",
            )
        topic, protocol, endpoint = props["topic_arn"], props["protocol"], props["endpoint"]
        # Look first: subscribing again would send an unconfirmed email address another mail.
        existing = _match(_subscriptions(ctx, topic), protocol, endpoint)
        if existing is not None:
            return self._live(existing)
        sns = ctx.client("sns")
        ctx.retry(
            lambda: sns.subscribe(
                TopicArn=topic, Protocol=protocol, Endpoint=endpoint, ReturnSubscriptionArn=True
            ),
            codes=CONFLICT_CODES,
            timeout=120.0,
        )
        # With ReturnSubscriptionArn AWS answers an ARN even for an unconfirmed email, which its
        # list then shows as PendingConfirmation: report what discovery will see, once listed.
        sub = ctx.poll(
            lambda: _match(_subscriptions(ctx, topic), protocol, endpoint),
            lambda s: s is not None,
            timeout=120.0,
            what=f"the {protocol} subscription of {topic} to be listed",
        )
        assert sub is not None
        return self._live(sub)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        if live.attrs.get("pending_confirmation") or live.id.startswith("pending:"):
            # AWS will not unsubscribe an unconfirmed subscription (and lists no ARN for it); it
            # expires by itself after 3 days and gets no messages meanwhile: treat it as gone.
            # (Should the recipient still confirm it in time, the next discovery shows it again.)
            return
        sns = ctx.client("sns")
        unless_gone(lambda: ctx.retry(lambda: sns.unsubscribe(SubscriptionArn=live.id), codes=CONFLICT_CODES))
        topic = live.props["topic_arn"]
        wait_gone(
            ctx,
            lambda: any(s["SubscriptionArn"] == live.id for s in _subscriptions(ctx, topic)),
            address=live.address,
            aws_id=live.id,
        )

    def _live(self, sub: Mapping[str, Any]) -> Live:
        props = {"topic_arn": sub["TopicArn"], "protocol": sub["Protocol"], "endpoint": sub["Endpoint"]}
        pending = sub["SubscriptionArn"] in _PENDING
        sub_id = pending_id(sub["TopicArn"], sub["Endpoint"]) if pending else sub["SubscriptionArn"]
        return Live(address_for(sub["Protocol"]), self.kind, sub_id, props, {"pending_confirmation": pending})


def _worth_listing(ctx: AwsContext, topic_arn: str) -> bool:
    """Whether discovery lists the topic's subscriptions: always in a full audit or when the spec
    or state has one (the topic's counts are eventually consistent: byoc's own subscription must
    not vanish from a plan because a count lagged), else only when the topic counts any."""
    if ctx.expected(KIND_NAME) != {}:
        return True
    attributes = topic_attributes(ctx, topic_arn)
    if attributes is None:  # the topic is gone
        return False
    return any(attributes.get(count, "1") != "0" for count in _COUNTS)


def _subscriptions(ctx: AwsContext, topic_arn: str) -> list[dict[str, Any]]:
    """The topic's live subscriptions (pending ones included, just-deleted ones not); none
    when the topic itself is gone."""

    def read() -> list[dict[str, Any]]:
        pages = ctx.client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
        return [s for page in pages for s in page["Subscriptions"]]

    subs = unless_gone(read) or []
    return [s for s in subs if s["SubscriptionArn"] != _DELETED]


def _match(subs: list[dict[str, Any]], protocol: str, endpoint: str) -> dict[str, Any] | None:
    return next((s for s in subs if s["Protocol"] == protocol and s["Endpoint"] == endpoint), None)


KIND = SnsTopicSubscription()
