"""The tagging index: one paginated GetResources call lists every ARN tagged for the cluster.

Kinds whose own list calls cannot filter by tag (S3 buckets, load balancers, target groups,
alarms, SNS topics, log groups, KMS keys, secrets) read their ARNs and tags from here, shared
within a discovery pass. IAM is not covered by the tagging API (its kinds read by name or list
by path), and EC2 kinds filter their own describes by tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG, is_owned

#: the services whose kinds read the index: the only ones asked for (EC2 kinds describe by tag
#: themselves, and each tagged item costs page space: at most 500 tags a page)
SERVICES = ("cloudwatch", "elasticloadbalancing", "kms", "logs", "s3", "sns")


@dataclass(frozen=True)
class Tagged:
    arn: str
    tags: dict[str, str]

    @property
    def service(self) -> str:
        return self.arn.split(":")[2]

    @property
    def resource(self) -> str:
        """The part after the account id, e.g. ``loadbalancer/app/name/id`` or ``bucket``."""
        return self.arn.split(":", 5)[5]


#: values one TagFilter of GetResources may hold
TAG_VALUES = 20


def _fetch(ctx: AwsContext, services: tuple[str, ...] = SERVICES,
           addresses: list[str] | None = None) -> list[Tagged]:
    """The index's items of ``services`` tagged for the cluster (at ``addresses`` alone, if given:
    at most ``TAG_VALUES``; tag filter values are matched exactly)."""
    client = ctx.client("resourcegroupstaggingapi")
    filters = [{"Key": CLUSTER_TAG, "Values": [ctx.cluster]}]
    if addresses is not None:
        filters.append({"Key": ADDRESS_TAG, "Values": addresses})
    pages = client.get_paginator("get_resources").paginate(
        TagFilters=filters,
        ResourceTypeFilters=list(services),
        ResourcesPerPage=100,
        TagsPerPage=500,  # moto (and the API's doc) default to 100 tags a page: ~12 of our items
    )
    out: list[Tagged] = []
    for page in pages:
        for item in page.get("ResourceTagMappingList", []):
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            if is_owned(ctx, tags):
                out.append(Tagged(item["ResourceARN"], tags))
    return out


def tagged(ctx: AwsContext, service: str, resource_prefix: str = "") -> list[Tagged]:
    """ARNs owned by the cluster for one service (``s3``, ``elasticloadbalancing`` …) whose
    resource part starts with ``resource_prefix`` (e.g. ``loadbalancer/``, ``targetgroup/``)."""
    if service not in SERVICES:
        raise ValueError(f"the tagging index is not asked for {service!r}; add it to SERVICES")
    items: list[Tagged] = ctx.memo("tagging", "get_resources", lambda: _fetch(ctx))
    return [t for t in items if t.service == service and t.resource.startswith(resource_prefix)]


def tagged_at(ctx: AwsContext, service: str, resource_prefix: str,
              addresses: list[str]) -> dict[str, list[Tagged]]:
    """A fresh look (no memo) at the index for the cluster's items of ``service`` whose resource
    part starts with ``resource_prefix``, tagged with one of ``addresses`` (at most ``TAG_VALUES``):
    {address: its items}."""
    out: dict[str, list[Tagged]] = {a: [] for a in addresses}
    for t in _fetch(ctx, (service,), addresses):
        if t.resource.startswith(resource_prefix) and t.tags.get(ADDRESS_TAG) in out:
            out[t.tags[ADDRESS_TAG]].append(t)
    return out


def tags_list_to_dict(tags: Any) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` (any capitalisation of key/value) as a dict."""
    out: dict[str, str] = {}
    for t in tags or ():
        k = t.get("Key", t.get("key", t.get("TagKey")))
        v = t.get("Value", t.get("value", t.get("TagValue", "")))
        if k is not None:
            out[str(k)] = str(v)
    return out
