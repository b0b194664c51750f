"""The dependency graph of resources: a networkx DiGraph keyed by address, and its DOT text."""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from byoc.errors import PlanError
from byoc.model import Resource


def graph_of(resources: Iterable[Resource]) -> nx.DiGraph:
    """The dependency graph: node per address (attribute ``resource``), edge dependency → dependent."""
    g: nx.DiGraph = nx.DiGraph()
    for r in resources:
        if r.address in g:
            raise PlanError(f"blueprint bug: two resources share the address {r.address}")
        g.add_node(r.address, resource=r)
    for r in resources:
        for dep in sorted(r.dependencies()):
            if dep not in g:
                raise PlanError(f"blueprint bug: {r.address} refers to {dep}, which is not in the graph")
            g.add_edge(dep, r.address)
    if not nx.is_directed_acyclic_graph(g):
        cycle = " → ".join(a for a, _ in nx.find_cycle(g))
        raise PlanError(f"blueprint bug: dependency cycle {cycle}")
    return g


def to_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT text of the graph, stable order, edges pointing from dependency to dependent."""
    lines = ["digraph byoc {", '  rankdir="LR";', '  node [shape=box, fontname="Helvetica"];']
    for n in sorted(g.nodes):
        lines.append(f"  {_q(n)};")
    for a, z in sorted(g.edges):
        lines.append(f"  {_q(a)} -> {_q(z)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
