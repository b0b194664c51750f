"""``aws_sns_topic``: the cluster's alarm topic, encrypted at rest (``alias/aws/sns`` by default).

Discovery reads ARNs and tags from the tagging index and the key from GetTopicAttributes
(one call per topic, a cluster has one; shared with the subscription kind within a pass).
The topic's id is its ARN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, unless_gone
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned, tag_list
from byoc.model import Live
from byoc.resources._ec2 import wait_gone
from byoc.resources._monitoring import CONFLICT_CODES, changed_props, own_tags, sync_tags
from byoc.resources._tagging import tagged
from byoc.resources.base import ResourceType


class SnsTopic(ResourceType):
    kind = "aws_sns_topic"
    service = "sns"
    force_new = frozenset({"name"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        out = []
        for item in tagged(ctx, "sns"):
            if ":" in item.resource:  # a subscription ARN (topic:uuid), not a topic
                continue
            attributes = topic_attributes(ctx, item.arn)
            if attributes is not None:  # None: deleted since the index was read
                out.append(self._live(item.arn, attributes, own_tags(item.tags)))
        return out

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        sns = ctx.client("sns")
        params: dict[str, Any] = {"Name": props["name"], "Tags": tag_list(props["tags"])}
        if props.get("kms_master_key_id"):
            params["Attributes"] = {"KmsMasterKeyId": props["kms_master_key_id"]}
        try:
            # idempotent by name: a retry after a lost response gets the same topic back
            created = ctx.retry(lambda: sns.create_topic(**params), codes=CONFLICT_CODES, timeout=120.0)
        except ClientError as exc:
            if error_code(exc) != "InvalidParameter" or "already exists" not in str(exc):
                raise
            current = self._adopt(ctx, address, props["name"], exc)
            return self.update(ctx, current, props, changed_props(current.props, _props(props)))
        arn = created["TopicArn"]
        attributes = ctx.poll(
            lambda: _attributes(ctx, arn), lambda a: a is not None, timeout=120.0, what=f"topic {arn}"
        )
        assert attributes is not None
        return self._live(arn, attributes, props["tags"])

    def _adopt(self, ctx: AwsContext, address: str, name: str, exc: ClientError) -> Live:
        """AWS refuses CreateTopic for an existing name with other tags or attributes (moto does
        not): carry on if that topic is ours under ``address``, else report the clash."""
        sns = ctx.client("sns")
        arn = sns.create_topic(Name=name)["TopicArn"]  # the existing topic's ARN, nothing made
        tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}
        attributes = _attributes(ctx, arn)
        if attributes is None or not (is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address):
            raise exc
        return self._live(arn, attributes, own_tags(tags))

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        sns = ctx.client("sns")
        if "kms_master_key_id" in changed:
            ctx.retry(
                lambda: sns.set_topic_attributes(
                    TopicArn=live.id,
                    AttributeName="KmsMasterKeyId",
                    AttributeValue=props["kms_master_key_id"] or "",  # "" turns encryption off
                ),
                codes=CONFLICT_CODES,
                timeout=120.0,
            )
        if "tags" in changed:
            sync_tags(
                ctx,
                live.props["tags"],
                props["tags"],
                tag=lambda tags: sns.tag_resource(ResourceArn=live.id, Tags=tag_list(tags)),
                untag=lambda keys: sns.untag_resource(ResourceArn=live.id, TagKeys=keys),
            )
        return Live(live.address, self.kind, live.id, _props(props), dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        sns = ctx.client("sns")
        unless_gone(lambda: ctx.retry(lambda: sns.delete_topic(TopicArn=live.id), codes=CONFLICT_CODES))
        wait_gone(ctx, lambda: _attributes(ctx, live.id) is not None, address=live.address, aws_id=live.id)

    def _live(self, arn: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> Live:
        props = _props(
            {
                "name": arn.rsplit(":", 1)[1],
                "kms_master_key_id": attributes.get("KmsMasterKeyId"),
                "tags": tags,
            }
        )
        return Live(address_of(tags, self.kind, arn), self.kind, arn, props, {"arn": arn})


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly: an unencrypted topic's key is None."""
    return {
        "name": props["name"],
        "kms_master_key_id": props.get("kms_master_key_id") or None,
        "tags": dict(props["tags"]),
    }


def _attributes(ctx: AwsContext, arn: str) -> dict[str, str] | None:
    """GetTopicAttributes; None when the topic does not exist."""
    resp = unless_gone(lambda: ctx.client("sns").get_topic_attributes(TopicArn=arn))
    return None if resp is None else dict(resp["Attributes"])


def topic_attributes(ctx: AwsContext, arn: str) -> dict[str, str] | None:
    """GetTopicAttributes once per discovery pass (the topic and subscription kinds share it)."""
    return ctx.memo("sns", f"topic_attributes:{arn}", lambda: _attributes(ctx, arn))


KIND = SnsTopic()
