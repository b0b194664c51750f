"""``aws_lb``: an application or network load balancer in front of the Proton nodes (Terraform's aws_lb).

Create looks before it creates (by name: moto makes duplicates, AWS may hand back the first one),
sets the attributes (deletion protection, access logs into the log bucket …), then waits through
``provisioning``. Deletion protection is turned off before a delete (``prepare_delete``, which says
so) and again when AWS refuses a delete for it (OperationNotPermitted); delete waits until AWS
forgets the load balancer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, is_owned, tag_list, with_address
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._elb import (
    attribute_list,
    delete_and_wait,
    describe_one,
    flag,
    lb_attributes,
    owned_load_balancers,
    read_tags,
    resource_part,
    update_tags,
)
from byoc.resources.base import ResourceType

#: the Type field → the type segment of the ARN and of CloudWatch's LoadBalancer dimension
_TYPE_SEGMENT = {"application": "app", "network": "net", "gateway": "gwy"}
#: prop → load balancer attribute (idle timeout: ALB only; cross-zone: NLB only, always on for ALBs)
_ATTRS = {
    "idle_timeout": "idle_timeout.timeout_seconds",
    "enable_deletion_protection": "deletion_protection.enabled",
    "enable_cross_zone_load_balancing": "load_balancing.cross_zone.enabled",
    "drop_invalid_header_fields": "routing.http.drop_invalid_header_fields.enabled",
}
#: the attributes behind the ``access_logs`` prop (the provider's block: a list of one object)
_LOGS = {"enabled": "access_logs.s3.enabled", "bucket": "access_logs.s3.bucket",
         "prefix": "access_logs.s3.prefix"}
#: what the user is told when byoc turns deletion protection off
UNPROTECTED = "deletion protection turned off"


class LoadBalancer(ResourceType):
    kind = "aws_lb"
    service = "elbv2"
    seconds = (180.0, 20.0)
    force_new = frozenset({"name", "load_balancer_type", "internal"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        out = []
        for lb, tags in owned_load_balancers(ctx):
            attrs = lb_attributes(ctx, lb["LoadBalancerArn"])
            if attrs is not None:
                out.append(with_address(self._live(lb, attrs, tags)))
        return out

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        existing = _by_name(ctx, props["name"])
        if existing is not None:
            return self._adopt(ctx, address, props, existing)
        params: dict[str, Any] = {
            "Name": props["name"],
            "Subnets": list(props["subnets"]),
            "Scheme": "internal" if props["internal"] else "internet-facing",
            "Type": props["load_balancer_type"],
            "Tags": tag_list(props["tags"]),
            "IpAddressType": "ipv4",
        }
        if props["security_groups"]:
            params["SecurityGroups"] = list(props["security_groups"])
        lb = ctx.client("elbv2").create_load_balancer(**params)["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        _set_attributes(ctx, arn, _wanted_attributes(props))
        lb = self._wait_usable(ctx, address, arn)
        return self._read(ctx, address, lb, props["tags"])

    def _adopt(self, ctx: AwsContext, address: str, props: Mapping[str, Any], lb: dict[str, Any]) -> Live:
        """A load balancer with the name exists: carry on with it if it is ours under this address
        (an earlier create that did not finish), else report the clash."""
        arn = lb["LoadBalancerArn"]
        tags = read_tags(ctx, [arn]).get(arn, {})
        if not (is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address):
            raise CloudError(
                f"a load balancer named {props['name']} already exists and is not this cluster's; "
                "rename it, or pick another cluster name",
                address=address,
                aws_id=arn,
                code="DuplicateLoadBalancerName",
            )
        lb = self._wait_usable(ctx, address, arn)
        live = self._read(ctx, address, lb, tags)
        want = _props(props)
        clash = sorted(k for k in self.force_new if live.props[k] != want[k])
        if clash:
            raise CloudError(
                f"an earlier, unfinished create left this load balancer with a different {', '.join(clash)}; "
                "delete it and run again",
                address=address,
                aws_id=arn,
                code="Conflict",
            )
        changed = {k for k in want if live.props[k] != want[k]}
        return self.update(ctx, live, want, changed) if changed else live

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        elb = ctx.client("elbv2")
        network = live.props["load_balancer_type"] == "network"
        if "security_groups" in changed and network and not live.props["security_groups"]:
            raise CloudError(
                "a network load balancer created without security groups can never get any; "
                "it has to be replaced (delete it and run again)",
                address=live.address,
                aws_id=live.id,
                code="NlbSecurityGroups",
            )
        if "subnets" in changed:
            elb.set_subnets(LoadBalancerArn=live.id, Subnets=list(props["subnets"]))
        if "security_groups" in changed:
            elb.set_security_groups(LoadBalancerArn=live.id, SecurityGroups=list(props["security_groups"]))
        _set_attributes(ctx, live.id, {
            **{_ATTRS[k]: v for k, v in _prop_attrs(props).items() if k in changed},
            **(_log_attributes(props["access_logs"]) if "access_logs" in changed else {}),
        })
        if "tags" in changed:
            update_tags(ctx, live.id, live.props["tags"], props["tags"])
        return Live(live.address, self.kind, live.id, _props(props), dict(live.attrs))

    def prepare_delete(self, ctx: AwsContext, live: Live) -> tuple[str, ...]:
        """Turn deletion protection off if AWS has it on now (read afresh: the plan's view may be
        old); a load balancer already gone needs nothing."""
        attrs = lb_attributes(ctx, live.id, fresh=True)
        if attrs is None or not flag(attrs.get(_ATTRS["enable_deletion_protection"])):
            return ()
        note = _unprotect(ctx, live.id)
        return (note,) if note else ()

    def delete(self, ctx: AwsContext, live: Live) -> None:
        elb = ctx.client("elbv2")

        def delete() -> None:
            try:
                elb.delete_load_balancer(LoadBalancerArn=live.id)
            except ClientError as exc:
                # protection on after all (turned on since it was read, or a direct delete)
                if error_code(exc) != "OperationNotPermitted" or not _unprotect(ctx, live.id):
                    raise
                elb.delete_load_balancer(LoadBalancerArn=live.id)

        delete_and_wait(ctx, live, delete, lambda: _describe(ctx, live.id) is not None, timeout=600.0)

    # -- reading -----------------------------------------------------------------------------
    def _wait_usable(self, ctx: AwsContext, address: str, arn: str) -> dict[str, Any]:
        """Poll until the load balancer leaves ``provisioning`` (minutes in AWS); a ``failed`` one
        is deleted and reported."""
        try:
            lb = ctx.poll(
                lambda: _describe(ctx, arn),
                lambda lb: lb is not None and lb["State"]["Code"] != "provisioning",
                what=f"{arn} to be active",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = address, arn
            raise
        assert lb is not None  # the poll only ends on a described load balancer
        if lb["State"]["Code"] == "failed":
            message = (
                f"the load balancer failed to provision: {lb['State'].get('Reason') or 'no reason given'}"
            )
            try:
                self.delete(ctx, Live(address, self.kind, arn, {}, {}))
            except Exception as exc:  # report the failure, not the clean-up
                message += f" (and deleting it failed too: {exc})"
            raise CloudError(message, address=address, aws_id=arn, code="LoadBalancerFailed")
        return lb

    def _read(self, ctx: AwsContext, address: str, lb: Mapping[str, Any], tags: Mapping[str, str]) -> Live:
        arn = lb["LoadBalancerArn"]
        attrs = lb_attributes(ctx, arn, fresh=True)
        if attrs is None:
            raise CloudError(
                "the load balancer vanished while being created (deleted by someone else?)",
                address=address,
                aws_id=arn,
                code="LoadBalancerNotFound",
            )
        live = self._live(lb, attrs, tags)
        return Live(address, self.kind, live.id, live.props, live.attrs)

    def _live(self, lb: Mapping[str, Any], attrs: Mapping[str, str], tags: Mapping[str, str]) -> Live:
        arn = lb["LoadBalancerArn"]
        kind = lb["Type"]
        props = _props(
            {
                "name": lb["LoadBalancerName"],
                "load_balancer_type": kind,
                "internal": lb.get("Scheme") == "internal",
                "subnets": [az["SubnetId"] for az in lb.get("AvailabilityZones") or ()],
                "security_groups": lb.get("SecurityGroups") or [],
                # AWS omits attributes still at their default
                "idle_timeout": int(attrs.get(_ATTRS["idle_timeout"], "60"))
                if kind == "application"
                else None,
                "enable_deletion_protection": flag(attrs.get(_ATTRS["enable_deletion_protection"])),
                "enable_cross_zone_load_balancing": (
                    flag(attrs.get(_ATTRS["enable_cross_zone_load_balancing"])) if kind == "network" else None
                ),
                "drop_invalid_header_fields": (
                    flag(attrs.get(_ATTRS["drop_invalid_header_fields"])) if kind == "application" else None
                ),
                "access_logs": _logs_from_attributes(attrs),
                "tags": tags,
            }
        )
        # moto writes "app/" into NLB ARNs: the segment comes from Type, name and id from the ARN
        name_and_id = resource_part(arn).split("/", 2)[2]
        out = {
            "arn": arn,
            "arn_suffix": f"{_TYPE_SEGMENT.get(kind, kind)}/{name_and_id}",
            "dns_name": lb.get("DNSName"),
            "zone_id": lb.get("CanonicalHostedZoneId"),
        }
        return Live(tags.get(ADDRESS_TAG, ""), self.kind, arn, props, out)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    idle = props["idle_timeout"]
    cross = props["enable_cross_zone_load_balancing"]
    drop = props.get("drop_invalid_header_fields")
    return {
        "name": props["name"],
        "load_balancer_type": props["load_balancer_type"],
        "internal": bool(props["internal"]),
        "subnets": sorted(props["subnets"]),
        "security_groups": sorted(props["security_groups"]),
        "idle_timeout": None if idle is None else int(idle),
        "enable_deletion_protection": bool(props["enable_deletion_protection"]),
        "enable_cross_zone_load_balancing": None if cross is None else bool(cross),
        "drop_invalid_header_fields": None if drop is None else bool(drop),
        "access_logs": [{"bucket": str(x["bucket"]), "prefix": str(x.get("prefix") or ""),
                         "enabled": bool(x.get("enabled", True))} for x in props.get("access_logs") or ()],
        "tags": dict(props["tags"]),
    }


def _logs_from_attributes(attrs: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ``access_logs`` block as AWS's attributes describe it: none without a bucket."""
    bucket = attrs.get(_LOGS["bucket"]) or ""
    if not bucket:
        return []
    return [{"bucket": bucket, "prefix": attrs.get(_LOGS["prefix"]) or "",
             "enabled": flag(attrs.get(_LOGS["enabled"]))}]


def _log_attributes(logs: Any) -> dict[str, Any]:
    """The three access_logs.s3.* attributes for the ``access_logs`` prop (none: logging off)."""
    block = (logs or [None])[0]
    if block is None:
        return {_LOGS["enabled"]: False}
    return {_LOGS["enabled"]: bool(block.get("enabled", True)), _LOGS["bucket"]: block["bucket"],
            _LOGS["prefix"]: block.get("prefix") or ""}


def _unprotect(ctx: AwsContext, arn: str) -> str:
    """Turn deletion protection off; what to tell the user ("" when the load balancer is gone)."""
    try:
        _set_attributes(ctx, arn, {_ATTRS["enable_deletion_protection"]: False})
    except ClientError as exc:
        if is_not_found(exc):
            return ""
        raise
    return UNPROTECTED


def _prop_attrs(props: Mapping[str, Any]) -> dict[str, Any]:
    """The attribute-backed props that apply to this type (None = not applicable)."""
    return {k: props.get(k) for k in _ATTRS if props.get(k) is not None}


def _wanted_attributes(props: Mapping[str, Any]) -> dict[str, Any]:
    attributes = {_ATTRS[k]: v for k, v in _prop_attrs(props).items()}
    if props.get("access_logs"):  # off is AWS's default
        attributes |= _log_attributes(props["access_logs"])
    return attributes


def _set_attributes(ctx: AwsContext, arn: str, attributes: Mapping[str, Any]) -> None:
    """ModifyLoadBalancerAttributes; ELB checks it may write into the access log bucket, whose
    policy (written a moment ago) may not be in force yet: "Access Denied for bucket" is retried."""
    if attributes:
        ctx.retry(
            lambda: ctx.client("elbv2").modify_load_balancer_attributes(
                LoadBalancerArn=arn, Attributes=attribute_list(attributes)),
            codes={"InvalidConfigurationRequest"},
            match=lambda exc: "access denied for bucket" in str(exc).lower(),
            timeout=min(ctx.retry_timeout, 60.0),
        )


def _describe(ctx: AwsContext, arn: str) -> dict[str, Any] | None:
    """The load balancer as AWS describes it now; None when AWS does not know it."""
    return describe_one(
        lambda: ctx.client("elbv2").describe_load_balancers(LoadBalancerArns=[arn]), "LoadBalancers"
    )


def _by_name(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    """Look before create: the load balancer named ``name``, if any (by name, never paginated)."""
    return describe_one(lambda: ctx.client("elbv2").describe_load_balancers(Names=[name]), "LoadBalancers")


KIND = LoadBalancer()
