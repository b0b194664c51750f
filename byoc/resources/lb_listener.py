"""``aws_lb_listener``: one port of the load balancer forwarding to one target group (Terraform's shape).

Listeners are tagged in the create call but the tagging index does not list them: discovery reads
their tags with DescribeTags. Create looks for a listener on the port first (moto makes duplicates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import ADDRESS_TAG, is_owned, tag_list, with_address
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._elb import delete_and_wait, describe_listeners, owned_listeners, read_tags, update_tags
from byoc.resources.base import ResourceType

#: protocols that carry a certificate and a TLS security policy
_SECURE = frozenset({"HTTPS", "TLS"})


class Listener(ResourceType):
    kind = "aws_lb_listener"
    service = "elbv2"
    force_new = frozenset({"load_balancer_arn"})
    #: a listener forwarding to a target group blocks deleting that group (ResourceInUse)
    pins = frozenset({"default_target_group_arn"})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``default_target_group_arn`` as the provider's ``default_action`` block (forward)."""
        out = {k: v for k, v in values.items() if k != "default_target_group_arn"}
        if "default_target_group_arn" in values:
            target = values["default_target_group_arn"]
            out["default_action"] = [{"type": "forward", "target_group_arn": target, "order": 1}]
        return out

    def discover(self, ctx: AwsContext) -> list[Live]:
        return [with_address(self._live(item, tags)) for item, tags in owned_listeners(ctx)]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        want = _props(props)
        lb_arn = want["load_balancer_arn"]
        on_port = next((i for i in describe_listeners(ctx, lb_arn) if i["Port"] == want["port"]), None)
        if on_port is not None:
            return self._adopt(ctx, address, want, on_port)
        params = _params(want)
        item = ctx.client("elbv2").create_listener(
            LoadBalancerArn=lb_arn, Tags=tag_list(want["tags"]), **params
        )["Listeners"][0]
        live = self._live(item, want["tags"])
        return Live(address, self.kind, live.id, live.props, live.attrs)

    def _adopt(self, ctx: AwsContext, address: str, want: Mapping[str, Any], item: dict[str, Any]) -> Live:
        """The port is taken: carry on with the listener if it is ours under this address, else refuse."""
        arn = item["ListenerArn"]
        tags = read_tags(ctx, [arn]).get(arn, {})
        if not (is_owned(ctx, tags) and tags.get(ADDRESS_TAG) == address):
            raise CloudError(
                f"the load balancer already has a listener on port {want['port']} that is not this "
                "cluster's; remove it and run again",
                address=address,
                aws_id=arn,
                code="DuplicateListener",
            )
        live = self._live(item, tags)
        live = Live(address, self.kind, live.id, live.props, live.attrs)
        changed = {k for k in want if live.props[k] != want[k]}
        return self.update(ctx, live, want, changed) if changed else live

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        want = _props(props)
        if changed - {"tags"}:
            # every setting at once: AWS drops certificate and policy when HTTPS becomes HTTP
            ctx.client("elbv2").modify_listener(ListenerArn=live.id, **_params(want))
        if "tags" in changed:
            update_tags(ctx, live.id, live.props["tags"], want["tags"])
        return Live(live.address, self.kind, live.id, want, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        elb = ctx.client("elbv2")
        delete_and_wait(
            ctx, live, lambda: elb.delete_listener(ListenerArn=live.id), lambda: _exists(ctx, live.id),
            timeout=300.0,
        )

    def _live(self, item: Mapping[str, Any], tags: Mapping[str, str]) -> Live:
        arn = item["ListenerArn"]
        protocol = item["Protocol"]
        secure = protocol in _SECURE  # moto reports an SslPolicy on plain HTTP/TCP listeners too
        certs = item.get("Certificates") or []
        default = next((c for c in certs if c.get("IsDefault")), certs[0] if certs else None)
        props = _props(
            {
                "load_balancer_arn": item["LoadBalancerArn"],
                "port": item["Port"],
                "protocol": protocol,
                "certificate_arn": default["CertificateArn"] if secure and default else None,
                "ssl_policy": item.get("SslPolicy") if secure else None,
                "default_target_group_arn": _forward_target(item.get("DefaultActions") or []),
                "tags": tags,
            }
        )
        return Live(tags.get(ADDRESS_TAG, ""), self.kind, arn, props, {"arn": arn})


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "load_balancer_arn": props["load_balancer_arn"],
        "port": int(props["port"]),
        "protocol": props["protocol"],
        "certificate_arn": props["certificate_arn"],
        "ssl_policy": props["ssl_policy"],
        "default_target_group_arn": props["default_target_group_arn"],
        "tags": dict(props["tags"]),
    }


def _params(want: Mapping[str, Any]) -> dict[str, Any]:
    """CreateListener / ModifyListener parameters: the port, protocol, TLS settings, forward action."""
    params: dict[str, Any] = {
        "Port": want["port"],
        "Protocol": want["protocol"],
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": want["default_target_group_arn"]}],
    }
    if want["protocol"] in _SECURE:
        if want["certificate_arn"] is not None:
            params["Certificates"] = [{"CertificateArn": want["certificate_arn"]}]
        if want["ssl_policy"] is not None:
            params["SslPolicy"] = want["ssl_policy"]
    return params


def _forward_target(actions: list[dict[str, Any]]) -> str | None:
    """The target group of the default forward action (simple or ForwardConfig with one group)."""
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            return str(action["TargetGroupArn"])
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if len(groups) == 1:
            return str(groups[0]["TargetGroupArn"])
    return None


def _exists(ctx: AwsContext, arn: str) -> bool:
    try:
        return bool(ctx.client("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"])
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise


KIND = Listener()
