"""Outputs: what users need after apply (endpoints, bucket, log group, secret ARN — never the
secret), computed from the resources that exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.model import Live

SCHEMES = {"HTTP": "http", "HTTPS": "https", "TCP": "tcp", "TLS": "tls"}
ENDPOINT_NAMES = {8123: "http_batch", 3218: "http_streaming", 8463: "native_tcp"}


def outputs_of(resources: Mapping[str, Live]) -> dict[str, Any]:
    """The values users want after apply, from what exists."""
    def ids(kind_name: str) -> list[str]:
        prefix = kind_name + "["
        return [resources[a].id for a in sorted(resources) if a.startswith(prefix)]

    out: dict[str, Any] = {}
    vpc = resources.get("aws_vpc.main")
    if vpc:
        out["vpc_id"] = vpc.id
    if ids("aws_subnet.public"):
        out["public_subnet_ids"] = ids("aws_subnet.public")
    if ids("aws_subnet.private"):
        out["private_subnet_ids"] = ids("aws_subnet.private")
    for name in ("lb", "node"):
        sg = resources.get(f"aws_security_group.{name}")
        if sg:
            out[f"{name}_security_group_id"] = sg.id
    lb = resources.get("aws_lb.main")
    if lb and lb.attrs.get("dns_name"):
        dns = lb.attrs["dns_name"]
        out["load_balancer_dns_name"] = dns
        endpoints = {}
        for address in sorted(resources):
            if not address.startswith("aws_lb_listener.main["):
                continue
            props = resources[address].props
            port, protocol = props.get("port"), str(props.get("protocol"))
            scheme = SCHEMES.get(protocol, "tcp")
            name = ENDPOINT_NAMES.get(int(port or 0), str(port))
            endpoints[name] = f"{scheme}://{dns}:{port}"
        out["endpoints"] = endpoints
    service = resources.get("aws_vpc_endpoint_service.main")
    if service and service.attrs.get("service_name"):
        # what a consumer names when creating an interface endpoint (docs/operations.md, PrivateLink)
        out["private_link_service_name"] = service.attrs["service_name"]
    nodes = ids("aws_instance.node")
    if nodes:
        out["instance_ids"] = nodes
    bucket = resources.get("aws_s3_bucket.data")
    if bucket:
        out["bucket"] = bucket.props.get("bucket", bucket.id)
    log_group = resources.get("aws_cloudwatch_log_group.main")
    if log_group:
        out["log_group"] = log_group.props.get("name", log_group.id)
    secret = resources.get("aws_secretsmanager_secret.admin")
    if secret:
        out["admin_password_secret_arn"] = secret.attrs.get("arn", secret.id)
    return out
