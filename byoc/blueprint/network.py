"""The cluster's network: VPC, public and private subnets per AZ, internet and NAT gateways,
route tables, the two security groups (load balancer, nodes), the VPC's default security group
adopted and emptied, and the VPC's flow log (its log group and delivery role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from byoc import proton
from byoc.blueprint.base import Builder, created_key_arn
from byoc.blueprint.policy import document, statement
from byoc.model import Ref, canonical_json
from byoc.spec.cidr import carve

#: the flow-log delivery role's inline policy
FLOW_LOGS_POLICY = "vpc-flow-logs"


def flow_logs_role_name(cluster: str) -> str:
    return f"{cluster}-flow-logs"


@dataclass(frozen=True)
class Network:
    """Addresses the rest of the blueprint refers to."""

    vpc: str
    public: dict[str, str]  # az -> subnet address
    private: dict[str, str]
    lb_sg: str
    node_sg: str


def build_network(b: Builder) -> Network:
    d = b.spec.data
    net = d["network"]
    azs: list[str] = list(b.spec.availability_zones)

    vpc = b.add(
        "aws_vpc", "main", None,
        {"cidr_block": net["vpc_cidr"], "enable_dns_support": True, "enable_dns_hostnames": True},
        label=b.cluster,
    )
    igw = b.add("aws_internet_gateway", "main", None, {"vpc_id": Ref(vpc)}, label=b.cluster)

    public: dict[str, str] = {}
    private: dict[str, str] = {}
    for az in azs:
        pub_cidr, priv_cidr = carve(net["vpc_cidr"], net["subnet_newbits"], az)
        for role, cidr, out in (("public", pub_cidr, public), ("private", priv_cidr, private)):
            out[az] = b.add(
                "aws_subnet", role, az,
                {"vpc_id": Ref(vpc), "cidr_block": cidr, "availability_zone": az,
                 "map_public_ip_on_launch": False},
            )

    # NAT gateways: one per AZ, one in the first AZ, or none.
    nat_azs = {"per_az": azs, "single": azs[:1], "none": []}[net["nat_gateway"]]
    nat: dict[str, str] = {}
    for az in nat_azs:
        eip = b.add("aws_eip", "nat", az, {"domain": "vpc"})
        # The NAT gateway needs the internet gateway attached first, and must be gone before
        # the internet gateway is detached: the explicit dependency gives both orders.
        nat[az] = b.add(
            "aws_nat_gateway", "main", az,
            {"allocation_id": Ref(eip), "subnet_id": Ref(public[az]), "connectivity_type": "public"},
            depends_on=(igw,),
        )

    public_rt = b.add(
        "aws_route_table", "public", None,
        {"vpc_id": Ref(vpc), "route": [{"cidr_block": "0.0.0.0/0", "gateway_id": Ref(igw)}]},
    )
    for az in azs:
        b.add("aws_route_table_association", "public", az,
              {"subnet_id": Ref(public[az]), "route_table_id": Ref(public_rt)}, tagged=False)
        nat_az = az if az in nat else (nat_azs[0] if nat_azs else None)
        routes = [] if nat_az is None else [
            {"cidr_block": "0.0.0.0/0", "nat_gateway_id": Ref(nat[nat_az])}
        ]
        rt = b.add("aws_route_table", "private", az, {"vpc_id": Ref(vpc), "route": routes})
        b.add("aws_route_table_association", "private", az,
              {"subnet_id": Ref(private[az]), "route_table_id": Ref(rt)}, tagged=False)

    private_cidrs = [carve(net["vpc_cidr"], net["subnet_newbits"], az)[1] for az in azs]
    lb_sg, node_sg = _security_groups(
        b, vpc, d["load_balancer"]["type"], net["allowed_cidrs"], d["compute"].get("ssh_key_name"),
        private_cidrs,
    )
    # the VPC's default security group: adopted and emptied, so nothing put in it by hand is open
    b.add("aws_default_security_group", "main", None, {"vpc_id": Ref(vpc), "ingress": [], "egress": []},
          label=f"{b.cluster}-default")
    if net["flow_logs"]["enabled"]:
        _flow_logs(b, vpc, net["flow_logs"])
    return Network(vpc, public, private, lb_sg, node_sg)


def flow_logs_group_name(cluster: str) -> str:
    return f"/aws/vpc-flow-logs/{cluster}"


def _flow_logs(b: Builder, vpc: str, conf: dict[str, Any]) -> None:
    """The VPC's flow log, to a log group of its own, delivered through a role that may write
    only there (its trust limited to this account's flow logs)."""
    name = flow_logs_group_name(b.cluster)
    retention = conf["retention_days"] or b.spec.data["monitoring"]["log_retention_days"]
    group = b.add("aws_cloudwatch_log_group", "flow_logs", None, {
        "name": name, "retention_in_days": retention, "kms_key_id": created_key_arn(b.spec),
    }, label=name)
    role = b.add("aws_iam_role", "flow_logs", None, {
        "name": flow_logs_role_name(b.cluster),
        "path": f"/byoc/{b.cluster}/",
        "description": f"byoc {b.cluster}: VPC flow log delivery",
        "assume_role_policy": document(statement(
            "Allow", ["sts:AssumeRole"], principal={"Service": ["vpc-flow-logs.amazonaws.com"]},
            condition={"StringEquals": {"aws:SourceAccount": [Ref(vpc, "owner_id")]}},
        )),
        "inline_policies": {FLOW_LOGS_POLICY: document(statement(
            "Allow", ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [Ref(group, "arn_wildcard")], sid="DeliverFlowLogs",
        ))},
        "max_session_duration": 3600,
    }, label=flow_logs_role_name(b.cluster))
    b.add("aws_flow_log", "main", None, {
        "vpc_id": Ref(vpc),
        "traffic_type": conf["traffic_type"],
        "log_destination_type": "cloud-watch-logs",
        "log_destination": Ref(group, "arn"),
        "iam_role_arn": Ref(role, "arn"),
        "max_aggregation_interval": 600,
    }, label=b.cluster)


def _rule(port: int | None, source: dict[str, Any], description: str) -> dict[str, Any]:
    if port is None:
        return {"protocol": "-1", "from_port": 0, "to_port": 0, **source, "description": description}
    return {"protocol": "tcp", "from_port": port, "to_port": port, **source,
            "description": description}


#: what a node reaches (docs/security.md): HTTPS only — AWS APIs (S3, SSM, CloudWatch, Secrets
#: Manager, EC2), the OS package repositories and the image registry, through the NAT gateway — and
#: the other nodes. DNS (the VPC resolver) and NTP/metadata (link-local) are not filtered by groups.
NODE_EGRESS = [
    _rule(443, {"cidr_block": "0.0.0.0/0"}, "HTTPS to AWS APIs and the image registry"),
    _rule(None, {"self": True}, "all traffic between nodes"),
]


def _cidr_source(cidr: str) -> dict[str, str]:
    """A rule's source for a client network: IPv6 networks go in AWS's Ipv6Ranges, not IpRanges."""
    return {"ipv6_cidr_block": cidr} if ":" in cidr else {"cidr_block": cidr}


def _security_groups(
    b: Builder, vpc: str, lb_type: str, allowed: list[str], ssh_key: str | None, private_cidrs: list[str]
) -> tuple[str, str]:
    ports = proton.listener_ports(lb_type)
    lb_ingress = [
        _rule(p, _cidr_source(c), f"Proton {p} from allowed network") for p in ports for c in allowed
    ]
    # the load balancer talks only to the nodes, on the listeners' ports (traffic and health
    # checks): to the private subnets they live in (naming the nodes' group here would make the
    # two groups refer to each other, a cycle inline rules cannot express)
    lb_egress = [_rule(p, {"cidr_block": c}, f"Proton {p} to the nodes")
                 for p in ports for c in private_cidrs]
    lb_sg = b.add(
        "aws_security_group", "lb", None,
        {"name": f"{b.cluster}-lb", "description": f"byoc {b.cluster}: load balancer",
         "vpc_id": Ref(vpc), "ingress": _sorted(lb_ingress), "egress": _sorted(lb_egress)},
    )
    node_ingress = [
        _rule(p, {"security_group_id": Ref(lb_sg)}, f"Proton {p} from the load balancer") for p in ports
    ]
    node_ingress.append(_rule(None, {"self": True}, "all traffic between nodes"))
    if ssh_key:
        # the nodes sit in private subnets: SSH can only come from networks routed into the VPC,
        # so an allowed "whole internet" is never opened for SSH (it would be a needless 0.0.0.0/0:22)
        node_ingress += [_rule(22, _cidr_source(c), "SSH from allowed network")
                         for c in allowed if not c.endswith("/0")]
    node_sg = b.add(
        "aws_security_group", "node", None,
        {"name": f"{b.cluster}-node", "description": f"byoc {b.cluster}: Proton nodes",
         "vpc_id": Ref(vpc), "ingress": _sorted(node_ingress), "egress": _sorted(NODE_EGRESS)},
    )
    return lb_sg, node_sg


def _sorted(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rules, key=canonical_json)
