"""The blueprint: a pure function from a validated Spec (and pinned facts) to the desired graph.

Nodes are ``Resource`` values keyed by address; an edge Y → X means X needs Y first (X holds a
``Ref`` to Y, or declares Y in ``depends_on``). One module per part of the cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from byoc.blueprint.base import PLACEHOLDER_AMI, Builder, Facts
from byoc.blueprint.network import build_network
from byoc.graph import graph_of
from byoc.model import Resource
from byoc.spec import Spec

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["PLACEHOLDER_AMI", "Facts", "build", "desired_graph"]


def build(spec: Spec, facts: Facts | None = None) -> list[Resource]:
    """Every desired resource of the cluster, in a stable order."""
    b = Builder(spec, facts or Facts())
    build_network(b)
    return b.nodes


def desired_graph(spec: Spec, facts: Facts | None = None) -> nx.DiGraph:
    return graph_of(build(spec, facts))
