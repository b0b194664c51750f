"""Preflight's quota checks: what the cluster needs of the account's EC2, VPC and load balancer
quotas (Service Quotas where it answers — a quota it cannot read is a warning, never a pass).

What the cluster still needs is what the plan creates (``creates``, when apply passes its plan):
what a killed run left behind is adopted, not created, so it needs no new quota. Without a plan
(``byoc preflight``) what the cluster owns is what discovery would find (both byoc tags)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from byoc.aws.context import AwsContext
from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG, tags_dict
from byoc.operations.checks import FAIL, OK, WARN, Check, Skip, reason, type_info, vcpus
from byoc.resources._volumes import MARKET_TAG
from byoc.spec import Spec

#: "standard" instance families of the vCPU quotas L-1216C47A / L-34B43A08
STANDARD_FAMILIES = frozenset({"a", "c", "d", "h", "i", "m", "r", "t", "z", "im", "is"})


def _quota(ctx: AwsContext, name: str, what: str, service: str, code: str) -> float:
    """The applied value of a quota; raises _NoQuota (→ warn) when Service Quotas does not answer."""
    try:
        quota = ctx.client("service-quotas").get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
        value = quota.get("Value")
        if isinstance(value, int | float):
            return float(value)
        why = "Service Quotas gave no value"
    except (ClientError, BotoCoreError) as exc:
        why = reason(exc)
    raise _NoQuota(Check(
        name, WARN, f"could not check the {what} quota ({why})",
        f"check {service} quota {code} in the Service Quotas console (https://console.aws.amazon.com/"
        f"servicequotas/home?region={ctx.region}); allow servicequotas:GetServiceQuota to check it here",
    ))


class _NoQuota(Exception):
    def __init__(self, check: Check) -> None:
        super().__init__(check.message)
        self.check = check


def _compare(name: str, what: str, code: str, limit: float, used: int, extra: int, detail: str,
             remedy: str) -> Check:
    need = used + extra
    text = f"{what}: needs {need} of {limit:g} ({used} in use + {extra} {detail})"
    if need > limit:
        fix = f"request an increase in Service Quotas (quota code {code}) or {remedy}"
        return Check(name, FAIL, text, fix)
    return Check(name, OK, text)


def _quota_check(name: str, body: Callable[[], Check]) -> Check:
    try:
        return body()
    except _NoQuota as exc:
        return exc.check


def _family(instance_type: str) -> str:
    match = re.match(r"[a-z]+", instance_type.split(".", 1)[0])
    return match.group(0) if match else ""


def quota_vcpus(ctx: AwsContext, spec: Spec, nodes: int) -> Check:
    name, itype = "quota:vcpus", str(spec.data["compute"]["instance_type"])
    if _family(itype) not in STANDARD_FAMILIES:
        return Check(name, OK, f"not checked: {itype} is outside the standard families (A, C, D, H, I, M, R, "
                     "T, Z); check its family's vCPU quota in Service Quotas")
    info = type_info(ctx, itype)
    if info is None:
        raise Skip(f"needs the vCPU count of {itype} (see the instance-type check)")
    spot = bool(spec.data["compute"].get("spot"))
    what, code = (("Running standard Spot vCPUs", "L-34B43A08") if spot
                  else ("Running On-Demand standard vCPUs", "L-1216C47A"))

    def body() -> Check:
        limit = _quota(ctx, name, what, "ec2", code)
        used = _runningvcpus(ctx, spot)
        return _compare(name, what, code, limit, used, nodes * vcpus(info), f"for {nodes} new {itype}",
                        "lower compute.instance_count or choose a smaller compute.instance_type")
    return _quota_check(name, body)


def _runningvcpus(ctx: AwsContext, spot: bool) -> int:
    """vCPUs of the region's running and pending standard-family instances of one market."""
    pages = ctx.client("ec2").get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    types: list[str] = []
    for page in pages:
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                is_spot = inst.get("InstanceLifecycle") == "spot" or (
                    "InstanceLifecycle" not in inst and tags_dict(inst.get("Tags")).get(MARKET_TAG) == "spot")
                if is_spot == spot and _family(inst["InstanceType"]) in STANDARD_FAMILIES:
                    types.append(inst["InstanceType"])
    per_type: dict[str, int] = {}
    distinct = sorted(set(types))
    for start in range(0, len(distinct), 100):
        described = ctx.client("ec2").describe_instance_types(InstanceTypes=distinct[start:start + 100])
        per_type.update({t["InstanceType"]: vcpus(t) for t in described["InstanceTypes"]})
    return sum(per_type.get(t, 0) for t in types)


def _owned(items: list[dict[str, Any]], cluster: str) -> list[dict[str, Any]]:
    """The items discovery counts as the cluster's (``is_owned``: both byoc tags)."""
    return [i for i in items if (tags := tags_dict(i.get("Tags"))).get(CLUSTER_TAG) == cluster
            and ADDRESS_TAG in tags]


def quota_vpcs(ctx: AwsContext, spec: Spec, creates: int | None = None) -> Check:
    name, what, code = "quota:vpcs", "VPCs per Region", "L-F678F1CE"

    def body() -> Check:
        limit = _quota(ctx, name, what, "vpc", code)
        pages = ctx.client("ec2").get_paginator("describe_vpcs").paginate()
        vpcs = [v for page in pages for v in page["Vpcs"]]
        extra = creates if creates is not None else 0 if _owned(vpcs, spec.cluster_name) else 1
        return _compare(name, what, code, limit, len(vpcs), extra, "for the cluster's VPC",
                        "delete unused VPCs in " + spec.region)
    return _quota_check(name, body)


def _nat_count(spec: Spec) -> int:
    mode = spec.data["network"]["nat_gateway"]
    return len(spec.availability_zones) if mode == "per_az" else 1 if mode == "single" else 0


def quota_eips(ctx: AwsContext, spec: Spec, creates: int | None = None) -> Check:
    name, what, code = "quota:eips", "EC2-VPC Elastic IPs", "L-0263D0A3"

    def body() -> Check:
        limit = _quota(ctx, name, what, "ec2", code)
        addresses = list(ctx.client("ec2").describe_addresses()["Addresses"])
        needed = _nat_count(spec)
        extra = creates if creates is not None else max(0, needed - len(_owned(addresses, spec.cluster_name)))
        return _compare(name, what, code, limit, len(addresses), extra, f"for {needed} NAT gateway(s)",
                        "release unused Elastic IPs, or choose network.nat_gateway: single")
    return _quota_check(name, body)


def quota_nat(ctx: AwsContext, spec: Spec) -> Check:
    name, what, code = "quota:nat-gateways", "NAT gateways per Availability Zone", "L-FE5A380F"
    if not _nat_count(spec):
        return Check(name, OK, "no NAT gateways needed (network.nat_gateway: none)")

    def body() -> Check:
        limit = _quota(ctx, name, what, "vpc", code)
        return Check(name, OK, f"{what}: {limit:g}; the cluster needs at most 1 per zone")
    return _quota_check(name, body)


def quota_lbs(ctx: AwsContext, spec: Spec, creates: int | None = None) -> Check:
    name, kind = "quota:load-balancers", str(spec.data["load_balancer"]["type"])
    what, code = (("Application Load Balancers per Region", "L-53DA6B97") if kind == "application"
                  else ("Network Load Balancers per Region", "L-69A177A2"))

    def body() -> Check:
        limit = _quota(ctx, name, what, "elasticloadbalancing", code)
        lbs = [lb for lb in _load_balancers(ctx) if lb.get("Type") == kind]
        ours = any(lb.get("LoadBalancerName") == f"{spec.cluster_name}-lb" for lb in lbs)
        extra = creates if creates is not None else 0 if ours else 1
        return _compare(name, what, code, limit, len(lbs), extra, "for the cluster's own",
                        "delete unused load balancers in " + spec.region)
    return _quota_check(name, body)


def _load_balancers(ctx: AwsContext) -> list[dict[str, Any]]:
    """Every load balancer of the region, page by page (a repeated marker ends the walk: moto's
    paginator can loop on duplicate names)."""
    elb = ctx.client("elbv2")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    params: dict[str, Any] = {"PageSize": 400}
    while True:
        page = elb.describe_load_balancers(**params)
        out.extend(page["LoadBalancers"])
        marker = page.get("NextMarker")
        if not marker or marker in seen:
            return out
        seen.add(marker)
        params["Marker"] = marker
