"""Rolling node changes, decided from a plan alone (pure): which changes belong to which node,
which nodes a plan takes out of service, and in what order they go one at a time.

A node's group is its instance, data volume, volume attachment and target group attachments
(``aws_instance.node["1"]``, ``aws_ebs_volume.data["1"]``, ``aws_volume_attachment.data["1"]``,
``aws_lb_target_group_attachment.node["8123-1"]``). A node is disrupted when its instance is
replaced or its data volume is detached from an instance that stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from byoc.model import parse_address
from byoc.plan import CREATE, DELETE, REPLACE, Change

INSTANCE = "aws_instance"
VOLUME_ATTACHMENT = "aws_volume_attachment"
TARGET_ATTACHMENT = "aws_lb_target_group_attachment"
_NODE_KINDS = {
    INSTANCE: "node", "aws_ebs_volume": "data", VOLUME_ATTACHMENT: "data", TARGET_ATTACHMENT: "node",
}


def node_of(address: str) -> str | None:
    """The node key an address belongs to, or None for a shared resource."""
    try:
        kind, name, key = parse_address(address)
    except ValueError:
        return None
    if key is None or _NODE_KINDS.get(kind) != name:
        return None
    if kind == TARGET_ATTACHMENT:  # keyed "<port>-<node>"
        _, sep, node = key.partition("-")
        return node if sep and node else None
    return key


def instance_address(node: str) -> str:
    return f'{INSTANCE}.node["{node}"]'


def node_order(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 30, key)


def disrupted_nodes(changes: Iterable[Change]) -> list[str]:
    """Nodes that stay in the cluster but go out of service during the apply, in roll order."""
    by_node: dict[str, dict[str, Change]] = {}
    for c in changes:
        node = node_of(c.address)
        if node is not None:
            by_node.setdefault(node, {})[c.kind] = c
    out = []
    for node, group in by_node.items():
        inst = group.get(INSTANCE)
        if inst is None or inst.action in (CREATE, DELETE):
            continue  # a new node, or one that leaves (scale-down): nothing to keep in service
        att = group.get(VOLUME_ATTACHMENT)
        if inst.action == REPLACE or (att is not None and att.action in (REPLACE, DELETE)):
            out.append(node)
    return sorted(out, key=node_order)


def replaced_nodes(changes: Iterable[Change]) -> dict[str, frozenset[str]]:
    """Existing nodes whose instance is replaced (in roll order) → the attributes forcing it."""
    out = {node: frozenset(a.name for a in c.attributes if a.forces_replacement)
           for c in changes if c.kind == INSTANCE and c.action == REPLACE
           and (node := node_of(c.address)) is not None}
    return {k: out[k] for k in sorted(out, key=node_order)}


def rolling_blockers(changes: Sequence[Change], nodes: Iterable[str]) -> list[str]:
    """Shared resources replaced under the disrupted nodes: they need every node gone at once
    (a replaced subnet or security group cannot be deleted while any node still uses it)."""
    wanted = set(nodes)
    by_addr = {c.address: c for c in changes}
    out: set[str] = set()
    for c in changes:
        if node_of(c.address) not in wanted:
            continue
        for dep in set(c.depends_on) | set(c.old_depends_on):
            d = by_addr.get(dep)
            if d is not None and d.action == REPLACE and node_of(dep) is None:
                out.add(dep)
    return sorted(out)


def rolling_order(changes: Sequence[Change]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(nodes to roll one at a time, in order; notes for the plan)."""
    nodes = disrupted_nodes(changes)
    if not nodes:
        return (), ()
    in_service = {node_of(c.address) for c in changes
                  if c.kind == INSTANCE and c.action not in (CREATE, DELETE)} - {None}
    blockers = rolling_blockers(changes, nodes)
    if blockers:
        who = f"node {nodes[0]} goes" if len(nodes) == 1 else f"{len(nodes)} nodes go"
        return (), (
            f"{who} out of service{'' if len(nodes) == 1 else ' AT ONCE, not one at a time'}: "
            f"{', '.join(blockers)} must be replaced and no node can keep using the old one. "
            "Expect downtime; apply in a maintenance window.",
        )
    if len(in_service) <= 1:
        return tuple(nodes), (
            f"node {nodes[0]} is replaced or stopped, and it is the only node: a single-node "
            "cluster cannot roll without downtime; the endpoint is unavailable until the node is "
            "healthy again. Apply in a maintenance window.",
        )
    return tuple(nodes), (
        f"rolling change: nodes {', '.join(nodes)} are replaced or stopped one at a time, in that "
        "order. Each is deregistered from the target groups and drained, replaced (its data volume "
        "is detached and re-attached), registered again and must be healthy in every target "
        "group before the next one goes. A node that does not become healthy stops the roll and "
        "leaves the rest untouched.",
    )
