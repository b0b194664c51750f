"""``aws_sqs_queue``: an encrypted queue (the password rotation function's dead-letter queue).

Discovery lists the queues whose names start with the cluster's name and keeps those tagged for it
(SQS has no tag filter). CreateQueue is idempotent by name with equal attributes, so a create
repeated after a crash gets the same queue back; one with other attributes is adopted when it is
this address's. The queue's id is its URL; its ARN is an attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._monitoring import changed_props, own_tags, sync_tags
from byoc.resources.base import ResourceType

#: SQS says a queue does not exist in two spellings
GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
#: "wait 60 seconds after deleting a queue before creating one with the same name"
RECREATE_CODES = frozenset({"AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"})
#: the attributes byoc manages, by prop
_ATTRIBUTES = {"kms_master_key_id": "KmsMasterKeyId", "sqs_managed_sse_enabled": "SqsManagedSseEnabled",
               "message_retention_seconds": "MessageRetentionPeriod"}


class SqsQueue(ResourceType):
    kind = "aws_sqs_queue"
    service = "sqs"
    force_new = frozenset({"name"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        sqs = ctx.client("sqs")
        out = []
        for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=ctx.cluster):
            for url in page.get("QueueUrls") or ():
                live = self._read(ctx, url)
                if live is not None and is_owned(ctx, live.props["tags"]):
                    out.append(live)
        return sorted(out, key=lambda x: x.address)

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        live = self._read(ctx, aws_id)
        return live if live is not None and is_owned(ctx, live.props["tags"]) else None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        sqs = ctx.client("sqs")
        want = _props(props)
        try:
            url = ctx.retry(lambda: sqs.create_queue(QueueName=want["name"], Attributes=_attributes(want),
                                                     tags=dict(want["tags"]))["QueueUrl"],
                            codes=RECREATE_CODES, timeout=120.0)
        except ClientError as exc:
            if error_code(exc) not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            return self._adopt(ctx, address, want, exc)
        live = ctx.poll(lambda: self._read(ctx, url), lambda x: x is not None, timeout=120.0,
                        what=f"queue {want['name']}")
        assert live is not None
        if live.props["tags"] != want["tags"]:  # the name was this cluster's already: carry on
            return self._adopt(ctx, address, want, None)
        return live

    def _adopt(self, ctx: AwsContext, address: str, want: dict[str, Any], exc: ClientError | None) -> Live:
        """The name is taken: carry on if the queue is ours under ``address``, else the clash."""
        url = ctx.client("sqs").get_queue_url(QueueName=want["name"])["QueueUrl"]
        current = self._read(ctx, url)
        if current is None or not (is_owned(ctx, current.props["tags"])
                                   and current.props["tags"].get(ADDRESS_TAG) == address):
            if exc is not None:
                raise exc
            raise CloudError(f"a queue named {want['name']} exists and is not this cluster's: delete or "
                             "rename it", address=address, aws_id=url, code="QueueNameExists")
        return self.update(ctx, current, want, changed_props(current.props, want))

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        sqs = ctx.client("sqs")
        want = _props(props)
        attributes = {k: v for k, v in _attributes(want).items()
                      if any(_ATTRIBUTES[p] == k for p in changed if p in _ATTRIBUTES)}
        if "kms_master_key_id" in changed and not want["kms_master_key_id"]:
            attributes["KmsMasterKeyId"] = ""
        if attributes:
            sqs.set_queue_attributes(QueueUrl=live.id, Attributes=attributes)
        if "tags" in changed:
            sync_tags(ctx, live.props["tags"], want["tags"],
                      tag=lambda tags: sqs.tag_queue(QueueUrl=live.id, Tags=tags),
                      untag=lambda keys: sqs.untag_queue(QueueUrl=live.id, TagKeys=keys))
        return Live(live.address, self.kind, live.id, want, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        try:
            ctx.client("sqs").delete_queue(QueueUrl=live.id)
        except ClientError as exc:
            if error_code(exc) not in GONE_CODES:
                raise
        ctx.poll(lambda: self._read(ctx, live.id), lambda x: x is None, timeout=120.0,
                 what=f"queue {live.id} to be deleted")

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """byoc's props are the provider's attributes already (``arn``/``url`` attributes too)."""
        return dict(values)

    def _read(self, ctx: AwsContext, url: str) -> Live | None:
        sqs = ctx.client("sqs")
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags") or {}
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                return None
            raise
        arn = attributes["QueueArn"]
        props = _props({
            "name": arn.rsplit(":", 1)[1],
            "kms_master_key_id": attributes.get("KmsMasterKeyId"),
            "sqs_managed_sse_enabled": str(attributes.get("SqsManagedSseEnabled", "false")).lower() == "true",
            "message_retention_seconds": attributes.get("MessageRetentionPeriod", 345600),
            "tags": own_tags(tags),
        })
        attrs = {"arn": arn, "url": url}
        return Live(address_of(props["tags"], self.kind, url), self.kind, url, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly: a key ARN or None; SSE-SQS only without a key."""
    key = props.get("kms_master_key_id") or None
    return {
        "name": props["name"],
        "kms_master_key_id": key,
        "sqs_managed_sse_enabled": bool(props.get("sqs_managed_sse_enabled")) and key is None,
        "message_retention_seconds": int(props.get("message_retention_seconds") or 345600),
        "tags": dict(props["tags"]),
    }


def _attributes(props: Mapping[str, Any]) -> dict[str, str]:
    out = {"MessageRetentionPeriod": str(props["message_retention_seconds"])}
    if props["kms_master_key_id"]:
        out["KmsMasterKeyId"] = str(props["kms_master_key_id"])
    else:
        out["SqsManagedSseEnabled"] = "true" if props["sqs_managed_sse_enabled"] else "false"
    return out


KIND = SqsQueue()
