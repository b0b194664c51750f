"""``aws_lb_target_group``: the Proton nodes behind one port of the load balancer (Terraform's shape).

The health check is set with the group and changed in place (ModifyTargetGroup); deregistration
delay and stickiness are attributes. Delete waits out ``ResourceInUse`` while a listener goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.tags import ADDRESS_TAG, is_owned, tag_list, with_address
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._elb import (
    attribute_list,
    delete_and_wait,
    describe_one,
    flag,
    owned_target_groups,
    read_tags,
    resource_part,
    tg_attributes,
    update_tags,
)
from byoc.resources._shapes import block
from byoc.resources.base import ResourceType

_HTTP = frozenset({"HTTP", "HTTPS"})
#: how long a delete waits for a listener that still forwards here to go
_IN_USE_TIMEOUT = 300.0


class TargetGroup(ResourceType):
    kind = "aws_lb_target_group"
    service = "elbv2"
    seconds = (2.0, 2.0)
    force_new = frozenset({"name", "port", "protocol", "vpc_id", "target_type"})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``health_check`` and ``stickiness`` as blocks; ``deregistration_delay`` as the
        provider's string."""
        out = {k: block(v) if k in ("health_check", "stickiness") else v for k, v in values.items()}
        delay = values.get("deregistration_delay")
        if isinstance(delay, int):
            out["deregistration_delay"] = str(delay)
        return out

    def discover(self, ctx: AwsContext) -> list[Live]:
        out = []
        for tg, tags in owned_target_groups(ctx):
            attrs = tg_attributes(ctx, tg["TargetGroupArn"])
            if attrs is not None:
                out.append(with_address(self._live(tg, attrs, tags)))
        return out

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        want = _props(props)
        existing = _describe(ctx, Names=[want["name"]])
        if existing is not None:
            return self._adopt(ctx, address, want, existing)
        tg = ctx.client("elbv2").create_target_group(
            Name=want["name"],
            Protocol=want["protocol"],
            Port=want["port"],
            VpcId=want["vpc_id"],
            TargetType=want["target_type"],
            Tags=tag_list(want["tags"]),
            **_health_check_params(want["health_check"]),
        )["TargetGroups"][0]
        _set_attributes(ctx, tg["TargetGroupArn"], want)
        return self._read(ctx, address, tg, want["tags"])

    def _adopt(self, ctx: AwsContext, address: str, want: Mapping[str, Any], tg: dict[str, Any]) -> Live:
        """The name is taken: carry on with the group if it is ours under this address, else refuse."""
        arn = tg["TargetGroupArn"]
        tags = read_tags(ctx, [arn]).get(arn, {})
        if not (is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address):
            raise CloudError(
                f"a target group named {want['name']} already exists and is not this cluster's",
                address=address,
                aws_id=arn,
                code="DuplicateTargetGroupName",
            )
        live = self._read(ctx, address, tg, tags)
        clash = sorted(k for k in self.force_new if live.props[k] != want[k])
        if clash:
            raise CloudError(
                f"an earlier, unfinished create left this target group with a different {', '.join(clash)}; "
                "delete it and run again",
                address=address,
                aws_id=arn,
                code="Conflict",
            )
        changed = {k for k in want if live.props[k] != want[k]}
        return self.update(ctx, live, want, changed) if changed else live

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        want = _props(props)
        if "health_check" in changed:
            ctx.client("elbv2").modify_target_group(
                TargetGroupArn=live.id, **_health_check_params(want["health_check"])
            )
        if changed & {"deregistration_delay", "stickiness"}:
            _set_attributes(ctx, live.id, want)
        if "tags" in changed:
            update_tags(ctx, live.id, live.props["tags"], want["tags"])
        return Live(live.address, self.kind, live.id, want, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        elb = ctx.client("elbv2")
        # ResourceInUse: a listener (or rule) forwarding here is still being deleted
        delete_and_wait(
            ctx, live, lambda: elb.delete_target_group(TargetGroupArn=live.id),
            lambda: _describe(ctx, TargetGroupArns=[live.id]) is not None, timeout=300.0,
            codes={"ResourceInUse"}, retry_timeout=min(ctx.retry_timeout, _IN_USE_TIMEOUT),
        )

    # -- reading -----------------------------------------------------------------------------
    def _read(self, ctx: AwsContext, address: str, tg: Mapping[str, Any], tags: Mapping[str, str]) -> Live:
        arn = tg["TargetGroupArn"]
        attrs = tg_attributes(ctx, arn, fresh=True)
        if attrs is None:
            raise CloudError(
                "the target group vanished while being created (deleted by someone else?)",
                address=address,
                aws_id=arn,
                code="TargetGroupNotFound",
            )
        live = self._live(tg, attrs, tags)
        return Live(address, self.kind, live.id, live.props, live.attrs)

    def _live(self, tg: Mapping[str, Any], attrs: Mapping[str, str], tags: Mapping[str, str]) -> Live:
        arn = tg["TargetGroupArn"]
        hc_protocol = tg.get("HealthCheckProtocol") or "TCP"
        http = hc_protocol in _HTTP  # moto keeps path and matcher after a switch to TCP: ignore them
        stickiness = None
        if flag(attrs.get("stickiness.enabled")):
            stickiness = {
                "enabled": True,
                "type": attrs.get("stickiness.type", "lb_cookie"),
                "cookie_duration": int(attrs.get("stickiness.lb_cookie.duration_seconds", "86400")),
            }
        props = _props(
            {
                "name": tg["TargetGroupName"],
                "port": tg["Port"],
                "protocol": tg["Protocol"],
                "vpc_id": tg["VpcId"],
                "target_type": tg.get("TargetType", "instance"),
                "health_check": {
                    "enabled": tg.get("HealthCheckEnabled", True),
                    "protocol": hc_protocol,
                    "path": tg.get("HealthCheckPath") if http else None,
                    "port": tg.get("HealthCheckPort", "traffic-port"),
                    "matcher": (tg.get("Matcher") or {}).get("HttpCode") if http else None,
                    "interval": tg["HealthCheckIntervalSeconds"],
                    "timeout": tg["HealthCheckTimeoutSeconds"],
                    "healthy_threshold": tg["HealthyThresholdCount"],
                    "unhealthy_threshold": tg["UnhealthyThresholdCount"],
                },
                "deregistration_delay": attrs.get("deregistration_delay.timeout_seconds", "300"),
                "stickiness": stickiness,
                "tags": tags,
            }
        )
        attributes = {"arn": arn, "arn_suffix": resource_part(arn)}
        return Live(tags.get(ADDRESS_TAG, ""), self.kind, arn, props, attributes)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly (stickiness that is not enabled is None)."""
    hc = props["health_check"]
    stick = props["stickiness"]
    if stick is not None and stick.get("enabled", True):
        stickiness: dict[str, Any] | None = {
            "enabled": True,
            "type": stick["type"],
            "cookie_duration": int(stick["cookie_duration"]),
        }
    else:
        stickiness = None
    return {
        "name": props["name"],
        "port": int(props["port"]),
        "protocol": props["protocol"],
        "vpc_id": props["vpc_id"],
        "target_type": props["target_type"],
        "health_check": {
            "enabled": bool(hc["enabled"]),
            "protocol": hc["protocol"],
            "path": hc["path"],
            "port": str(hc["port"]),
            "matcher": hc["matcher"],
            "interval": int(hc["interval"]),
            "timeout": int(hc["timeout"]),
            "healthy_threshold": int(hc["healthy_threshold"]),
            "unhealthy_threshold": int(hc["unhealthy_threshold"]),
        },
        "deregistration_delay": int(props["deregistration_delay"]),
        "stickiness": stickiness,
        "tags": dict(props["tags"]),
    }


def _health_check_params(hc: Mapping[str, Any]) -> dict[str, Any]:
    """CreateTargetGroup / ModifyTargetGroup health-check parameters (path and matcher: HTTP only)."""
    params: dict[str, Any] = {
        "HealthCheckEnabled": hc["enabled"],
        "HealthCheckProtocol": hc["protocol"],
        "HealthCheckPort": hc["port"],
        "HealthCheckIntervalSeconds": hc["interval"],
        "HealthCheckTimeoutSeconds": hc["timeout"],
        "HealthyThresholdCount": hc["healthy_threshold"],
        "UnhealthyThresholdCount": hc["unhealthy_threshold"],
    }
    if hc["protocol"] in _HTTP:
        if hc["path"] is not None:
            params["HealthCheckPath"] = hc["path"]
        if hc["matcher"] is not None:
            params["Matcher"] = {"HttpCode": hc["matcher"]}
    return params


def _set_attributes(ctx: AwsContext, arn: str, want: Mapping[str, Any]) -> None:
    """Deregistration delay and stickiness, in one ModifyTargetGroupAttributes."""
    attributes: dict[str, Any] = {"deregistration_delay.timeout_seconds": want["deregistration_delay"]}
    stick = want["stickiness"]
    if stick is None:
        attributes["stickiness.enabled"] = False
    else:
        attributes["stickiness.enabled"] = True
        attributes["stickiness.type"] = stick["type"]
        if stick["type"] == "lb_cookie":
            attributes["stickiness.lb_cookie.duration_seconds"] = stick["cookie_duration"]
    ctx.client("elbv2").modify_target_group_attributes(
        TargetGroupArn=arn, Attributes=attribute_list(attributes)
    )


def _describe(ctx: AwsContext, **params: Any) -> dict[str, Any] | None:
    """The one target group named by ``params`` (Names / TargetGroupArns); None when there is none."""
    return describe_one(lambda: ctx.client("elbv2").describe_target_groups(**params), "TargetGroups")


KIND = TargetGroup()
