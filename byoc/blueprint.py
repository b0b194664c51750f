"""The blueprint: a pure function from a validated Spec to the desired graph of resources.

Nodes are ``Resource`` values keyed by address; an edge Y → X means X needs Y first (X holds a
``Ref`` to Y, or declares Y in ``depends_on``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

from byoc import proton
from byoc.graph import graph_of
from byoc.model import Ref, Resource, make_address
from byoc.resources.base import ADDRESS_TAG, CLUSTER_TAG
from byoc.spec import Spec
from byoc.spec.cidr import carve


class _Builder:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.cluster = spec.cluster_name
        self.user_tags: Mapping[str, str] = spec.data.get("tags") or {}
        self.nodes: list[Resource] = []

    def tags(self, address: str, name: str) -> dict[str, str]:
        return {**self.user_tags, "Name": name, CLUSTER_TAG: self.cluster, ADDRESS_TAG: address}

    def add(
        self,
        kind: str,
        name: str,
        key: str | None,
        props: dict[str, Any],
        *,
        label: str | None = None,
        tagged: bool = True,
        depends_on: tuple[str, ...] = (),
        protected: bool = False,
    ) -> str:
        address = make_address(kind, name, key)
        if tagged:
            label = label or "-".join(p for p in (self.cluster, name, key) if p)
            props = {**props, "tags": self.tags(address, label)}
        self.nodes.append(Resource(address, kind, props, depends_on, protected))
        return address


def build(spec: Spec) -> list[Resource]:
    """Every desired resource of the cluster, in a stable order."""
    b = _Builder(spec)
    d = spec.data
    net = d["network"]
    azs: list[str] = list(spec.availability_zones)
    lb_type = d["load_balancer"]["type"]

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

    _security_groups(b, vpc, lb_type, net["allowed_cidrs"], d["compute"].get("ssh_key_name"))
    return b.nodes


def _rule(port: int | None, source: dict[str, Any], description: str) -> dict[str, Any]:
    if port is None:
        return {"protocol": "-1", "from_port": 0, "to_port": 0, **source, "description": description}
    return {"protocol": "tcp", "from_port": port, "to_port": port, **source, "description": description}


def _security_groups(
    b: _Builder, vpc: str, lb_type: str, allowed: list[str], ssh_key: str | None
) -> None:
    ports = proton.listener_ports(lb_type)
    all_out = [_rule(None, {"cidr_block": "0.0.0.0/0"}, "all outbound")]
    lb_ingress = [
        _rule(p, {"cidr_block": c}, f"Proton {p} from allowed network") for p in ports for c in allowed
    ]
    lb_sg = b.add(
        "aws_security_group", "lb", None,
        {"name": f"{b.cluster}-lb", "description": f"byoc {b.cluster}: load balancer",
         "vpc_id": Ref(vpc), "ingress": _sorted(lb_ingress), "egress": all_out},
    )
    node_ingress = [
        _rule(p, {"security_group_id": Ref(lb_sg)}, f"Proton {p} from the load balancer") for p in ports
    ]
    node_ingress.append(_rule(None, {"self": True}, "all traffic between nodes"))
    if ssh_key:
        node_ingress += [_rule(22, {"cidr_block": c}, "SSH from allowed network") for c in allowed]
    b.add(
        "aws_security_group", "node", None,
        {"name": f"{b.cluster}-node", "description": f"byoc {b.cluster}: Proton nodes",
         "vpc_id": Ref(vpc), "ingress": _sorted(node_ingress), "egress": all_out},
    )


def _sorted(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from byoc.model import canonical_json

    return sorted(rules, key=canonical_json)


def desired_graph(spec: Spec) -> nx.DiGraph:
    return graph_of(build(spec))
