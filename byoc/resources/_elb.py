"""Reads and helpers shared by the four ELBv2 kinds (load balancer, target group, listener, attachment).

ELBv2 describes cannot filter by tag: ARNs and tags come from the tagging index, then batched
describes (≤20 ARNs a call); every read is shared within a discovery pass via ``ctx.memo``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import EVENTUAL_CODES, is_not_found
from byoc.aws.tags import is_owned, tag_list
from byoc.model import Live
from byoc.resources._ec2 import wait_gone
from byoc.resources._tagging import tagged

#: the most ARNs DescribeLoadBalancers / DescribeTags take in one call
BATCH = 20
#: ARN resource prefixes of the ELBv2 load balancers byoc makes (a classic ELB is ``loadbalancer/<name>``)
LB_PREFIXES = ("loadbalancer/app/", "loadbalancer/net/")

Item = dict[str, Any]
Tags = dict[str, str]


def chunks(items: Sequence[str], size: int = BATCH) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def batched(arns: Sequence[str], call: Callable[[list[str]], list[Item]]) -> list[Item]:
    """``call`` on ≤20 ARNs at a time. AWS refuses a whole batch when one ARN no longer exists
    (LoadBalancerNotFound, TargetGroupNotFound …): that batch is read again one ARN at a time,
    skipping the missing ones (the tagging index may still list something just deleted)."""
    out: list[Item] = []
    for chunk in chunks(arns):
        try:
            out.extend(call(chunk))
            continue
        except ClientError as exc:
            if not is_not_found(exc):
                raise
        for arn in chunk if len(chunk) > 1 else ():
            try:
                out.extend(call([arn]))
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
    return out


def clean_tags(tags: Mapping[str, str]) -> Tags:
    """Without the ``aws:`` tags nobody can set or remove."""
    return {k: v for k, v in tags.items() if not k.startswith("aws:")}


def flag(value: Any) -> bool:
    """An ELB attribute's "true"/"false" as a bool."""
    return str(value).lower() == "true"


def attribute_list(attributes: Mapping[str, Any]) -> list[dict[str, str]]:
    """``{"key": value}`` as ELB's ``[{"Key": k, "Value": "v"}]`` (bools as "true"/"false")."""
    out = []
    for key, value in attributes.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out.append({"Key": key, "Value": text})
    return out


def resource_part(arn: str) -> str:
    """``loadbalancer/app/name/id`` of ``arn:aws:elasticloadbalancing:region:acct:loadbalancer/…``."""
    return arn.split(":", 5)[5]


def describe_one(describe: Callable[[], Mapping[str, Any]], key: str) -> Item | None:
    """The first item under ``key`` of one describe by ARN or name (``describe()``); None when AWS
    does not know it."""
    try:
        items = describe()[key]
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return dict(items[0]) if items else None


def _attributes(
    ctx: AwsContext, memo_key: str, describe: Callable[[], Mapping[str, Any]], *, fresh: bool
) -> dict[str, str] | None:
    """A load balancer's or target group's attributes as a dict (``describe()``, shared within a
    discovery pass under ``memo_key`` unless ``fresh``); None when it no longer exists."""

    def fetch() -> dict[str, str] | None:
        try:
            resp = describe()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return {a["Key"]: a["Value"] for a in resp["Attributes"]}

    return fetch() if fresh else ctx.memo("elbv2", memo_key, fetch)


def delete_and_wait(
    ctx: AwsContext,
    live: Live,
    delete: Callable[[], Any],
    exists: Callable[[], bool],
    *,
    timeout: float,
    codes: Iterable[str] = EVENTUAL_CODES,
    retry_timeout: float | None = None,
) -> None:
    """The delete of the ELBv2 kinds: ``delete``, retrying ``codes``; not-found counts as deleted
    (ELB may still list it: the wait follows either way); then poll ``exists`` until it is false."""
    try:
        ctx.retry(delete, codes=codes, timeout=retry_timeout)
    except ClientError as exc:
        if not is_not_found(exc):
            raise
    wait_gone(ctx, exists, address=live.address, aws_id=live.id, timeout=timeout)


# -- tags ------------------------------------------------------------------------------------
def read_tags(ctx: AwsContext, arns: Sequence[str]) -> dict[str, Tags]:
    """ARN → tags, with one DescribeTags per 20 ARNs."""
    elb = ctx.client("elbv2")
    descs = batched(arns, lambda c: list(elb.describe_tags(ResourceArns=c)["TagDescriptions"]))
    return {d["ResourceArn"]: clean_tags({t["Key"]: t["Value"] for t in d.get("Tags") or ()}) for d in descs}


def update_tags(ctx: AwsContext, arn: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
    """Make the tags of an ELBv2 resource equal ``new`` (RemoveTags, then AddTags)."""
    elb = ctx.client("elbv2")
    removed = sorted(k for k in old if k not in new)
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if removed:
        elb.remove_tags(ResourceArns=[arn], TagKeys=removed)
    if changed:
        elb.add_tags(ResourceArns=[arn], Tags=tag_list(changed))


# -- load balancers --------------------------------------------------------------------------
def owned_load_balancers(ctx: AwsContext) -> list[tuple[Item, Tags]]:
    """(DescribeLoadBalancers item, tags) of every load balancer the cluster owns."""
    return ctx.memo("elbv2", "load_balancers", lambda: _owned_load_balancers(ctx))


def _owned_load_balancers(ctx: AwsContext) -> list[tuple[Item, Tags]]:
    index = {
        t.arn: clean_tags(t.tags)
        for t in tagged(ctx, "elasticloadbalancing", "loadbalancer/")
        if t.resource.startswith(LB_PREFIXES)
    }
    if not index:
        return []
    elb = ctx.client("elbv2")
    # never DescribeLoadBalancers without ARNs: moto's paginator loops on duplicate names
    lbs = batched(
        list(index), lambda c: list(elb.describe_load_balancers(LoadBalancerArns=c)["LoadBalancers"])
    )
    return [(lb, index[lb["LoadBalancerArn"]]) for lb in lbs if lb["LoadBalancerArn"] in index]


def lb_attributes(ctx: AwsContext, arn: str, *, fresh: bool = False) -> dict[str, str] | None:
    """The load balancer's attributes (shared within a discovery pass unless ``fresh``); None when
    it no longer exists."""
    return _attributes(
        ctx, f"lb_attributes:{arn}",
        lambda: ctx.client("elbv2").describe_load_balancer_attributes(LoadBalancerArn=arn), fresh=fresh,
    )


# -- target groups ---------------------------------------------------------------------------
def owned_target_groups(ctx: AwsContext) -> list[tuple[Item, Tags]]:
    """(DescribeTargetGroups item, tags) of every target group the cluster owns."""
    return ctx.memo("elbv2", "target_groups", lambda: _owned_target_groups(ctx))


def _owned_target_groups(ctx: AwsContext) -> list[tuple[Item, Tags]]:
    index = {t.arn: clean_tags(t.tags) for t in tagged(ctx, "elasticloadbalancing", "targetgroup/")}
    if not index:
        return []
    elb = ctx.client("elbv2")
    tgs = batched(list(index), lambda c: list(elb.describe_target_groups(TargetGroupArns=c)["TargetGroups"]))
    return [(tg, index[tg["TargetGroupArn"]]) for tg in tgs if tg["TargetGroupArn"] in index]


def tg_attributes(ctx: AwsContext, arn: str, *, fresh: bool = False) -> dict[str, str] | None:
    """The target group's attributes (shared within a discovery pass unless ``fresh``); None when
    it no longer exists."""
    return _attributes(
        ctx, f"tg_attributes:{arn}",
        lambda: ctx.client("elbv2").describe_target_group_attributes(TargetGroupArn=arn), fresh=fresh,
    )


def target_health(ctx: AwsContext, tg_arn: str) -> list[Item] | None:
    """DescribeTargetHealth of every target registered in the group; None when the group is gone."""

    def fetch() -> list[Item] | None:
        try:
            resp = ctx.client("elbv2").describe_target_health(TargetGroupArn=tg_arn)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return list(resp["TargetHealthDescriptions"])

    return ctx.memo("elbv2", f"target_health:{tg_arn}", fetch)


def is_registered(desc: Mapping[str, Any]) -> bool:
    """Whether a DescribeTargetHealth entry is a registered target: AWS answers ``unused`` with
    reason Target.NotRegistered for one that is not; a registered target of a group no listener
    uses yet is ``unused`` too, for reason Target.NotInUse, and that one counts."""
    health = desc["TargetHealth"]
    reason = health.get("Reason", "Target.NotRegistered")
    return not (health.get("State") == "unused" and reason == "Target.NotRegistered")


# -- listeners -------------------------------------------------------------------------------
def describe_listeners(ctx: AwsContext, lb_arn: str) -> list[Item]:
    """Every listener of one load balancer; [] when the load balancer is gone."""
    pages = ctx.client("elbv2").get_paginator("describe_listeners").paginate(LoadBalancerArn=lb_arn)
    try:
        return [item for page in pages for item in page["Listeners"]]
    except ClientError as exc:
        if is_not_found(exc):
            return []
        raise


def owned_listeners(ctx: AwsContext) -> list[tuple[Item, Tags]]:
    """(DescribeListeners item, tags) of every listener the cluster owns: one DescribeListeners
    per owned load balancer, then one DescribeTags per 20 listeners (the tagging index omits them)."""

    def fetch() -> list[tuple[Item, Tags]]:
        listeners = [
            item
            for lb, _ in owned_load_balancers(ctx)
            for item in describe_listeners(ctx, lb["LoadBalancerArn"])
        ]
        tags = read_tags(ctx, [item["ListenerArn"] for item in listeners])
        out = []
        for item in listeners:
            t = tags.get(item["ListenerArn"], {})
            if is_owned(ctx, t):
                out.append((item, t))
        return out

    return ctx.memo("elbv2", "listeners", fetch)


# -- instances (for the attachments' addresses) ----------------------------------------------
def cluster_instances(ctx: AwsContext) -> list[Item]:
    """Every instance DescribeInstances returns for the cluster's tag filter (unfiltered beyond
    that; shared with other kinds under ``describe_instances_cluster``)."""

    from byoc.resources._instances import cluster_instances as described

    return [instance for _, instance in described(ctx)]
