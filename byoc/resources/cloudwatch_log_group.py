"""``aws_cloudwatch_log_group``: a CloudWatch Logs group with retention, KMS key and tags.

Discovery reads names and tags from the tagging index, then retention and key from one
DescribeLogGroups by the names' common prefix (one per name when they share none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, unless_gone
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._ec2 import wait_gone
from byoc.resources._monitoring import CONFLICT_CODES, changed_props, own_tags, sync_tags
from byoc.resources._tagging import tagged
from byoc.resources.base import ResourceType

#: the only values PutRetentionPolicy accepts (moto accepts any; AWS says InvalidParameterException)
RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
#: right after CreateLogGroup a follow-up call may briefly not find the group
_SETTLE_CODES = CONFLICT_CODES | {"ResourceNotFoundException"}
#: AWS's answer ("The specified KMS key does not exist or is not allowed to be used with Arn …")
#: while the key's policy does not let CloudWatch Logs use it for the group, which is also the case
#: for a little while after the key is created or its policy changed: retried that long, no longer
_KEY_CODES = CONFLICT_CODES | {"AccessDeniedException"}
KEY_SETTLE_SECONDS = 60.0


def _conflict_or_key_settling(exc: BaseException) -> bool:
    """Retry AccessDeniedException only when it is about the group's KMS key."""
    return error_code(exc) != "AccessDeniedException" or "KMS key" in str(exc)


class LogGroup(ResourceType):
    kind = "aws_cloudwatch_log_group"
    service = "logs"
    force_new = frozenset({"name"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        owned: dict[str, dict[str, str]] = {}
        for item in tagged(ctx, "logs", "log-group:"):
            owned[_strip_wildcard(item.resource)[len("log-group:"):]] = own_tags(item.tags)
        groups = _describe(ctx, sorted(owned))
        return [self._live(g, owned[g["logGroupName"]]) for g in groups if g["logGroupName"] in owned]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        _validate(props)
        logs = ctx.client("logs")
        name = props["name"]
        params: dict[str, Any] = {"logGroupName": name, "tags": dict(props["tags"])}
        if props.get("kms_key_id"):
            params["kmsKeyId"] = props["kms_key_id"]
        try:
            if "kmsKeyId" in params:
                ctx.retry(lambda: logs.create_log_group(**params), codes=_KEY_CODES,
                          timeout=KEY_SETTLE_SECONDS, match=_conflict_or_key_settling)
            else:
                ctx.retry(lambda: logs.create_log_group(**params), codes=CONFLICT_CODES, timeout=120.0)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
            current = self._adopt(ctx, address, name, exc)
            return self.update(ctx, current, props, changed_props(current.props, _props(props)))
        # The retention and the wait until DescribeLogGroups shows the group go side by side; the
        # retention is set first in order, so its error is the one raised when both fail. Should
        # the retention fail, the group carries its tags: a re-run adopts it and sets it.
        days = props.get("retention_in_days")
        calls: list[Callable[[], Any]] = []
        if days is not None:
            calls.append(partial(_set_retention, ctx, name, days))
        calls.append(partial(ctx.poll, lambda: _get(ctx, name), lambda g: g is not None, timeout=120.0,
                             what=f"log group {name}"))
        group = ctx.together(*calls)[-1]
        assert group is not None
        # the read may come before the retention took: show the retention AWS accepted, as
        # discovery reads it back
        return self._live({**group, "retentionInDays": days}, props["tags"])

    def _adopt(self, ctx: AwsContext, address: str, name: str, exc: ClientError) -> Live:
        """The name is taken: carry on if the group is ours under ``address`` (an earlier create
        that did not finish), else report the clash as AWS did."""
        group = _get(ctx, name)
        if group is None:
            raise exc
        tags = ctx.client("logs").list_tags_for_resource(resourceArn=_arn(group))["tags"]
        if not (is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address):
            raise exc
        return self._live(group, own_tags(tags))

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        _validate(props)
        logs = ctx.client("logs")
        name = live.id
        if "retention_in_days" in changed:
            _set_retention(ctx, name, props["retention_in_days"])
        if "kms_key_id" in changed:
            if props["kms_key_id"]:
                call = partial(logs.associate_kms_key, logGroupName=name, kmsKeyId=props["kms_key_id"])
                ctx.retry(call, codes=_KEY_CODES, timeout=KEY_SETTLE_SECONDS, match=_conflict_or_key_settling)
            else:
                ctx.retry(partial(logs.disassociate_kms_key, logGroupName=name), codes=CONFLICT_CODES,
                          timeout=120.0)
        if "tags" in changed:
            arn = live.attrs["arn"]  # without ":*", as TagResource wants it
            sync_tags(
                ctx,
                live.props["tags"],
                props["tags"],
                tag=lambda tags: logs.tag_resource(resourceArn=arn, tags=tags),
                untag=lambda keys: logs.untag_resource(resourceArn=arn, tagKeys=keys),
            )
        return Live(live.address, self.kind, live.id, _props(props), dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        logs = ctx.client("logs")
        unless_gone(
            lambda: ctx.retry(lambda: logs.delete_log_group(logGroupName=live.id), codes=CONFLICT_CODES)
        )
        wait_gone(ctx, lambda: _get(ctx, live.id) is not None, address=live.address, aws_id=live.id)

    def _live(self, group: Mapping[str, Any], tags: Mapping[str, str]) -> Live:
        arn = _arn(group)
        props = _props(
            {
                "name": group["logGroupName"],
                "retention_in_days": group.get("retentionInDays"),
                "kms_key_id": group.get("kmsKeyId"),
                "tags": tags,
            }
        )
        attrs = {"arn": arn, "arn_wildcard": f"{arn}:*"}
        name = group["logGroupName"]
        return Live(address_of(tags, self.kind, name), self.kind, name, props, attrs)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly: no retention (never expire) and no key are None."""
    retention = props.get("retention_in_days")
    return {
        "name": props["name"],
        "retention_in_days": int(retention) if retention is not None else None,
        "kms_key_id": props.get("kms_key_id") or None,
        "tags": dict(props["tags"]),
    }


def _validate(props: Mapping[str, Any]) -> None:
    """What AWS would refuse, checked before any call (moto checks neither)."""
    days = props.get("retention_in_days")
    if days is not None and days not in RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(RETENTION_DAYS))
        raise CloudError(
            f"log group {props['name']}: retention_in_days must be one of {allowed} (got {days})",
            code="InvalidParameterException",
        )
    key = props.get("kms_key_id")
    if key and not str(key).startswith("arn:"):
        raise CloudError(
            f"log group {props['name']}: kms_key_id must be a KMS key ARN (got {key})",
            code="InvalidParameterException",
        )


def _set_retention(ctx: AwsContext, name: str, days: int | None) -> None:
    logs = ctx.client("logs")
    if days is None:
        call = partial(logs.delete_retention_policy, logGroupName=name)
    else:
        call = partial(logs.put_retention_policy, logGroupName=name, retentionInDays=days)
    ctx.retry(call, codes=_SETTLE_CODES, timeout=120.0)


def _strip_wildcard(arn: str) -> str:
    return arn[:-2] if arn.endswith(":*") else arn


def _arn(group: Mapping[str, Any]) -> str:
    """The group's ARN without the trailing ``:*`` DescribeLogGroups' ``arn`` carries."""
    return str(group.get("logGroupArn") or _strip_wildcard(group["arn"]))


def _describe(ctx: AwsContext, names: list[str]) -> list[dict[str, Any]]:
    """The named groups: one paginated describe by their common prefix, or one per name when
    they share none worth filtering by."""
    if not names:
        return []
    prefix = _common_prefix(names)
    prefixes = [prefix] if len(names) == 1 or len(prefix.strip("/")) > 0 else names
    paginator = ctx.client("logs").get_paginator("describe_log_groups")
    wanted = set(names)
    out: dict[str, dict[str, Any]] = {}  # one name may prefix another: keep each group once
    for p in prefixes:
        for page in paginator.paginate(logGroupNamePrefix=p):
            out.update((g["logGroupName"], g) for g in page["logGroups"] if g["logGroupName"] in wanted)
    return list(out.values())


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[:n]


def _get(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    return next((g for g in _describe(ctx, [name]) if g["logGroupName"] == name), None)


KIND = LogGroup()
