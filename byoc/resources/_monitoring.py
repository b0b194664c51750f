"""Helpers shared by the monitoring kinds (log group, alarm, SNS topic and subscription, dashboard).

Tag diffs, the conflict codes these services use for "try again" (``ctx.retry(codes=...)``),
and not-found tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from byoc.aws.context import AwsContext

T = TypeVar("T")

#: "a conflicting operation is in progress, try again": Logs, SNS and CloudWatch spell it differently
CONFLICT_CODES = frozenset(
    {
        "OperationAbortedException",  # logs
        "ConcurrentAccess",  # sns
        "ConcurrentModificationException",  # cloudwatch tagging
        "ConflictException",  # cloudwatch
    }
)


def own_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags without the ``aws:`` ones nobody can set or remove."""
    return {k: v for k, v in tags.items() if not k.startswith("aws:")}


def sync_tags(
    ctx: AwsContext,
    old: Mapping[str, str],
    new: Mapping[str, str],
    tag: Callable[[dict[str, str]], object],
    untag: Callable[[list[str]], object],
) -> None:
    """Make tags ``old`` into ``new``: ``untag(keys)`` what went, then ``tag(tags)`` what is new or
    changed (each retried on the services' conflict codes)."""
    to_set = {k: v for k, v in new.items() if old.get(k) != v}
    to_remove = sorted(k for k in old if k not in new)
    if to_remove:
        ctx.retry(lambda: untag(to_remove), codes=CONFLICT_CODES, timeout=120.0)
    if to_set:
        ctx.retry(lambda: tag(to_set), codes=CONFLICT_CODES, timeout=120.0)


def changed_props(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """The props of ``after`` (normalised) whose value differs from ``before``'s."""
    return {k for k, v in after.items() if before.get(k) != v}


