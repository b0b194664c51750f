"""The load balancer in front of the nodes: application (HTTP 8123/3218, HTTPS with a
certificate) or network (TCP 8123/3218/8463, so the native client works); internet-facing in
the public subnets only with public access on, internal otherwise; deletion protection on and access
logs into the log bucket; a target group per port with
`GET /` health checks (Proton answers it without authentication), and every node registered."""

from __future__ import annotations

from typing import Any

from byoc import proton
from byoc.blueprint.base import Balancer, Builder, Node
from byoc.blueprint.network import Network
from byoc.blueprint.storage import LB_PREFIX, Storage
from byoc.model import Ref, Sorted

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def build_lb(b: Builder, net: Network, nodes: list[Node], storage: Storage) -> Balancer:
    conf = b.spec.data["load_balancer"]
    public = b.spec.data["network"]["public_access"]
    lb_type = conf["type"]
    subnets = net.public if public else net.private
    lb = b.add("aws_lb", "main", None, {
        "name": f"{b.cluster}-lb",
        "load_balancer_type": lb_type,
        "internal": not public,
        "subnets": Sorted(tuple(Ref(subnets[az]) for az in sorted(subnets))),
        "security_groups": Sorted((Ref(net.lb_sg),)),
        "idle_timeout": conf["idle_timeout_seconds"] if lb_type == "application" else None,
        # on: destroy (and a replacement) turns it off first, and says so
        "enable_deletion_protection": True,
        "enable_cross_zone_load_balancing": True if lb_type == "network" else None,
        # an ALB passes on malformed HTTP headers unless told not to (request smuggling)
        "drop_invalid_header_fields": True if lb_type == "application" else None,
        # the log bucket's policy lets ELB write under lb/AWSLogs/<account>/ (see storage)
        "access_logs": [{"bucket": storage.log_bucket_name, "prefix": LB_PREFIX, "enabled": True}],
    }, label=f"{b.cluster}-lb", depends_on=(storage.log_bucket,))

    cert = conf.get("certificate_arn")
    groups: dict[int, str] = {}
    listeners: dict[int, str] = {}
    for port in proton.listener_ports(lb_type):
        key = str(port)
        groups[port] = b.add("aws_lb_target_group", "main", key, {
            "name": f"{b.cluster}-{port}",
            "port": port,
            "protocol": "HTTP" if lb_type == "application" else "TCP",
            "vpc_id": Ref(net.vpc),
            "target_type": "instance",
            "health_check": _health_check(port),
            "deregistration_delay": 30,
            "stickiness": ({"enabled": True, "type": "lb_cookie", "cookie_duration": 86400}
                           if lb_type == "application" and conf["sticky_sessions"] else None),
        }, label=f"{b.cluster}-{port}")
        protocol = _listener_protocol(lb_type, port, cert)
        tls = protocol in ("HTTPS", "TLS")
        listeners[port] = b.add("aws_lb_listener", "main", key, {
            "load_balancer_arn": Ref(lb, "arn"),
            "port": port,
            "protocol": protocol,
            "certificate_arn": cert if tls else None,
            "ssl_policy": TLS_POLICY if tls else None,
            "default_target_group_arn": Ref(groups[port], "arn"),
        }, label=f"{b.cluster}-{port}")
        for node in nodes:
            b.add("aws_lb_target_group_attachment", "node", f"{port}-{node.key}", {
                "target_group_arn": Ref(groups[port], "arn"),
                "target_id": Ref(node.instance),
                "port": port,
            }, tagged=False)
    return Balancer(lb, lb_type, groups, listeners)


def _health_check(port: int) -> dict[str, Any]:
    if port == proton.TCP_STREAMING:
        return {"enabled": True, "protocol": "TCP", "path": None, "port": "traffic-port", "matcher": None,
                "interval": 15, "timeout": 10, "healthy_threshold": 3, "unhealthy_threshold": 3}
    # GET / answers 200 "Ok." without authentication on both HTTP ports; /ping does not exist
    # on current Proton releases (proton-facts.md §3)
    return {"enabled": True, "protocol": "HTTP", "path": "/", "port": "traffic-port", "matcher": "200",
            "interval": 15, "timeout": 5, "healthy_threshold": 3, "unhealthy_threshold": 3}


def _listener_protocol(lb_type: str, port: int, cert: str | None) -> str:
    if lb_type == "application":
        return "HTTPS" if cert else "HTTP"
    if cert and port != proton.TCP_STREAMING:
        return "TLS"
    return "TCP"
