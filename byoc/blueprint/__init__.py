"""The blueprint: a pure function from a validated Spec (and pinned facts) to the desired graph.

Nodes are ``Resource`` values keyed by address; an edge Y → X means X needs Y first (X holds a
``Ref`` to Y, or declares Y in ``depends_on``). One module per part of the cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from byoc.blueprint.base import PLACEHOLDER_AMI, Builder, Facts
from byoc.blueprint.iam import build_iam, iam_names
from byoc.blueprint.lb import build_lb
from byoc.blueprint.monitoring import build_alarms, build_log_group, subscription_names
from byoc.blueprint.network import build_network
from byoc.blueprint.nodes import build_nodes
from byoc.blueprint.privatelink import build_private_link, service_names
from byoc.blueprint.rotation import build_rotation
from byoc.blueprint.storage import build_storage
from byoc.graph import graph_of
from byoc.model import Resource
from byoc.spec import Spec

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["PLACEHOLDER_AMI", "Facts", "build", "desired_graph", "known_names"]


def build(spec: Spec, facts: Facts | None = None) -> list[Resource]:
    """Every desired resource of the cluster, in a stable order."""
    b = Builder(spec, facts or Facts())
    net = build_network(b)
    storage = build_storage(b)
    log_group = build_log_group(b)
    identity = build_iam(b, storage, log_group)
    nodes = build_nodes(b, net, storage, identity)
    balancer = build_lb(b, net, nodes, storage)
    build_private_link(b, balancer)
    build_alarms(b, nodes, balancer)
    build_rotation(b, net, storage)
    return b.nodes


def desired_graph(spec: Spec, facts: Facts | None = None) -> nx.DiGraph:
    return graph_of(build(spec, facts))


def known_names(spec: Spec) -> dict[str, dict[str, frozenset[str]]]:
    """The names ``build`` gives the kinds that discovery can read by name (IAM), and the topic
    subscriptions and PrivateLink service it adds — kind → name → part names — without the facts
    ``build`` needs."""
    return {**iam_names(spec), "aws_sns_topic_subscription": subscription_names(spec),
            "aws_vpc_endpoint_service": service_names(spec)}
