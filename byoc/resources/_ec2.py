"""Small helpers shared by the EC2 networking kinds: owned describes, tokens, ARNs, waits.

Everything here builds on the AWS seam (``byoc.aws``); nothing here knows about one kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from byoc.aws.context import AwsContext
from byoc.aws.errors import EVENTUAL_CODES, error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, is_owned, owned_filter, update_ec2_tags
from byoc.errors import CloudError
from byoc.model import Live, canonical_json, partition

T = TypeVar("T")


def client_token(ctx: AwsContext, address: str, props: Mapping[str, Any], salt: str = "") -> str:
    """An idempotency token (≤64 chars): one identical request within a run, one resource.

    Salted with the run's id: crash recovery across runs comes from tags and look-before-create,
    and a fresh run must never be handed a resource that an earlier run's token made and deleted.
    """
    text = "\n".join([ctx.cluster, getattr(ctx, "run_id", ""), address, canonical_json(props), salt])
    return hashlib.sha256(text.encode()).hexdigest()[:64]


def user_tags(item: Mapping[str, Any]) -> dict[str, str]:
    """The item's tags as a dict, without the ``aws:`` tags nobody can set or remove."""
    return {t["Key"]: t["Value"] for t in item.get("Tags") or () if not t["Key"].startswith("aws:")}


def describe_owned(ctx: AwsContext, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """One describe (paginated where botocore can) filtered to this cluster's items.

    The tag filter is also applied client-side: some describes (moto's NAT gateways) ignore it.
    """
    ec2 = ctx.client("ec2")
    params = {"Filters": owned_filter(ctx), **params}
    if ec2.can_paginate(operation):
        items = [item for page in ec2.get_paginator(operation).paginate(**params) for item in page[key]]
    else:
        items = list(getattr(ec2, operation)(**params)[key])
    return [item for item in items if is_owned(ctx, user_tags(item))]


#: characters a tag filter value must not carry as they are: AWS reads ``*`` and ``?`` as wildcards
#: (``\\`` escapes them), moto globs (``[ ]`` too); each becomes ``?``, any one character, in both
_SPECIAL = str.maketrans(dict.fromkeys('[]*?"\\', "?"))


def address_pattern(address: str) -> str:
    """A ``tag:byoc:address`` filter value that AWS and moto both match against ``address`` (and
    against whatever differs from it only where a special character stood: narrow client-side)."""
    return address.translate(_SPECIAL)


#: addresses per look (EC2 takes at most 200 filter values in one call, all filters together)
ADDRESS_BATCH = 100


def address_filter(ctx: AwsContext, addresses: Iterable[str]) -> list[dict[str, Any]]:
    """The EC2 describe filter for this cluster's items at ``addresses`` (``ADDRESS_BATCH`` at most)."""
    values = sorted({address_pattern(a) for a in addresses})
    return [*owned_filter(ctx), {"Name": f"tag:{ADDRESS_TAG}", "Values": values}]


def at_addresses(
    items: Iterable[T], addresses: Iterable[str], tags: Callable[[T], Mapping[str, str]]
) -> dict[str, list[T]]:
    """``items`` (read with ``address_filter``) by the address each carries exactly, for
    ``addresses`` alone: what a wildcard let through under another address is dropped."""
    out: dict[str, list[T]] = {a: [] for a in addresses}
    for item in items:
        address = tags(item).get(ADDRESS_TAG)
        if address is not None and address in out:
            out[address].append(item)
    return out


def owned_items(ctx: AwsContext, operation: str, key: str) -> list[dict[str, Any]]:
    """``describe_owned`` once per discovery pass: kinds that read the same describe share it."""
    return ctx.memo("ec2", operation, lambda: describe_owned(ctx, operation, key))


def ec2_arn(ctx: AwsContext, owner: str, resource: str) -> str:
    """``arn:<partition>:ec2:<region>:<owner>:<resource>`` for describes that return no ARN."""
    return f"arn:{partition(ctx.region)}:ec2:{ctx.region}:{owner}:{resource}"


def is_gone(exc: BaseException, unless: frozenset[str] = frozenset()) -> bool:
    """``is_not_found``, except for codes in ``unless`` (NotFound codes that mean "try again")."""
    return is_not_found(exc) and error_code(exc) not in unless


def wait_gone(
    ctx: AwsContext,
    exists: Callable[[], bool],
    *,
    address: str,
    aws_id: str,
    timeout: float = 600.0,
) -> None:
    """Poll ``exists`` until it is false; CloudError (with address and id) on timeout."""
    try:
        ctx.poll(exists, lambda found: not found, timeout=timeout, what=f"{aws_id} to be deleted")
    except CloudError as exc:
        exc.address, exc.aws_id = address, aws_id
        raise


def delete_then_wait(
    ctx: AwsContext,
    live: Any,
    delete: Callable[[], Any],
    exists: Callable[[], bool],
    *,
    codes: Iterable[str] = EVENTUAL_CODES,
    retry_timeout: float | None = None,
    timeout: float = 600.0,
) -> None:
    """The delete of most kinds: call ``delete``, retrying AWS's eventual-consistency ``codes``
    (ENIs still draining, a role still in a profile …); not-found means already gone; then poll
    ``exists`` until AWS no longer shows the thing."""
    try:
        ctx.retry(delete, codes=codes, timeout=retry_timeout)
    except Exception as exc:
        if is_not_found(exc):
            return
        raise
    wait_gone(ctx, exists, address=live.address, aws_id=live.id, timeout=timeout)


def get_one(ctx: AwsContext, operation: str, key: str, id_param: str, rid: str) -> dict[str, Any] | None:
    """One EC2 item by id (e.g. ``describe_route_tables``, ``RouteTables``, ``RouteTableIds``);
    None when AWS does not know it (yet, or any more)."""
    try:
        items = getattr(ctx.client("ec2"), operation)(**{id_param: [rid]})[key]
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise
    return dict(items[0]) if items else None


def get_when_visible(
    ctx: AwsContext, operation: str, key: str, id_param: str, rid: str, *, timeout: float = 300.0
) -> dict[str, Any]:
    """``get_one`` polled until EC2's eventually consistent reads show the item just created."""
    item = ctx.poll(lambda: get_one(ctx, operation, key, id_param, rid), lambda i: i is not None,
                    timeout=timeout, what=f"{rid} to become visible")
    assert item is not None
    return item


def found(read: Callable[[], list[Any]]) -> bool:
    """True when ``read`` returns a non-empty list; False when it is empty or raises not-found."""
    try:
        return bool(read())
    except Exception as exc:
        if is_not_found(exc):
            return False
        raise


def update_tags_only(
    ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str],
    normalise: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> Live:
    """The in-place update of an EC2 kind whose only mutable prop is its tags (every other prop
    forces replacement): retag, and answer the desired props in the kind's normal form."""
    if "tags" in changed:
        update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
    return Live(live.address, live.kind, live.id, normalise(props), dict(live.attrs))
