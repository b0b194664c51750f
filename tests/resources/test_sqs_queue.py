"""aws_sqs_queue against moto: create = discover, a repeated create (after a crash) adopts the
queue, the key changes in place, other clusters' queues are not seen, delete is idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.sqs_queue import KIND

ADDR = "aws_sqs_queue.rotation_dlq"
KEY = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"


def props(**over: Any) -> dict[str, Any]:
    tags = {"Name": "test-dlq", "byoc:cluster": "test", "byoc:address": ADDR}
    return {
        "name": "test-password-rotation-dlq",
        "kms_master_key_id": None,
        "sqs_managed_sse_enabled": True,
        "message_retention_seconds": 1209600,
        "tags": tags,
        **over,
    }


def test_create_equals_discover_and_has_the_arn(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.props == props() and live.attrs["arn"].endswith(":test-password-rotation-dlq")
    assert KIND.discover(ctx) == [live]
    keyed = KIND.create(
        ctx,
        "aws_sqs_queue.other",
        props(
            name="test-other",
            kms_master_key_id=KEY,
            tags={"byoc:cluster": "test", "byoc:address": "aws_sqs_queue.other"},
        ),
    )
    assert keyed.props["kms_master_key_id"] == KEY and keyed.props["sqs_managed_sse_enabled"] is False


def test_a_repeated_create_adopts_and_a_strangers_queue_is_refused(ctx: AwsContext) -> None:
    first = KIND.create(ctx, ADDR, props())
    again = KIND.create(ctx, ADDR, props(message_retention_seconds=345600))  # a rerun with a new plan
    assert again.id == first.id and KIND.discover(ctx)[0].props["message_retention_seconds"] == 345600
    ctx.client("sqs").create_queue(QueueName="test-strangers", tags={"byoc:cluster": "someone"})
    mine = {"byoc:cluster": "test", "byoc:address": "aws_sqs_queue.x"}
    with pytest.raises((CloudError, ClientError)):  # AWS's clash, or byoc's: not this cluster's
        KIND.create(ctx, "aws_sqs_queue.x", props(name="test-strangers", tags=mine))
    assert [q.address for q in KIND.discover(ctx)] == [ADDR]


def test_key_and_tags_change_in_place_and_delete_is_idempotent(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    want = props(kms_master_key_id=KEY, sqs_managed_sse_enabled=False, tags={**props()["tags"], "team": "a"})
    KIND.update(ctx, live, want, {"kms_master_key_id", "sqs_managed_sse_enabled", "tags"})
    assert KIND.discover(ctx)[0].props == want
    KIND.delete(ctx, live)
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []


def test_other_clusters_do_not_see_it(ctx: AwsContext) -> None:
    KIND.create(ctx, ADDR, props())
    other = AwsContext(cluster="test-b", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
