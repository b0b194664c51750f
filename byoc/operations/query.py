"""``byoc query``: one SQL statement on the cluster's nodes through SSM Run Command (``ssm.run_sql``).

It needs no open port, no SSH and no route to the load balancer, so it works behind an internal
one. The admin password is read on the node by its own role and never leaves it. The query runs on
Proton's batch HTTP port 8123, in table mode: a streaming query (Proton's default on 3218) never
ends, a table-mode one does. By default it runs on the first node; each node is a separate Proton
(nodes share no data), so ``nodes=["all"]`` asks each of them and labels the answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from byoc.aws.context import AwsContext
from byoc.errors import ByocError
from byoc.operations.ssm import (
    SQL_FAILED,
    NodeRun,
    QueryResult,
    node_instances,
    run_sql,
    secret_arn_of,
)
from byoc.state.model import State

#: ``--node all``: every node
ALL = "all"
MAX_SECONDS = 3600


@dataclass(frozen=True)
class NodeAnswer:
    """One node's answer: its result, or why there is none."""

    node: str
    instance_id: str
    result: QueryResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"node": self.node, "instance_id": self.instance_id, "ok": self.ok}
        if self.result is not None:
            out.update({k: v for k, v in self.result.to_dict().items() if k != "node"})
        else:
            out["error"] = self.error
        return out


@dataclass
class QueryOutcome:
    cluster: str
    sql: str
    answers: list[NodeAnswer] = field(default_factory=list)
    #: True when no node was asked for and the first one answered for the cluster
    first_node_only: bool = False

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.answers)

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "sql": self.sql, "ok": self.ok,
                "results": [a.to_dict() for a in self.answers]}


def pick_nodes(state: State | None, nodes: Sequence[str] | None) -> dict[str, str]:
    """The nodes to ask (key → instance id): the first one by default, ``all`` for every one."""
    every = node_instances(state)
    if not nodes:
        first = next(iter(every))
        return {first: every[first]}
    if ALL in nodes:
        return every
    return node_instances(state, list(dict.fromkeys(nodes)))


def run_query(
    ctx: AwsContext,
    state: State | None,
    sql: str,
    *,
    nodes: Sequence[str] | None = None,
    max_seconds: int = 60,
) -> QueryOutcome:
    """Run ``sql`` on the chosen nodes (in table mode, on port 8123); every node's answer."""
    if not sql.strip():
        raise ByocError("the query is empty: give the SQL to run, e.g. byoc query SPEC \"SELECT version()\"")
    if not 1 <= max_seconds <= MAX_SECONDS:
        raise ByocError(f"--max-seconds {max_seconds}: give 1 to {MAX_SECONDS}")
    targets = pick_nodes(state, nodes)
    answers = run_sql(ctx, targets, secret_arn_of(state), sql, max_seconds=max_seconds)
    outcome = QueryOutcome(ctx.cluster, sql, first_node_only=not nodes)
    for node, answer in answers.items():
        if isinstance(answer, QueryResult):
            outcome.answers.append(NodeAnswer(node, targets[node], answer))
        else:
            outcome.answers.append(NodeAnswer(node, targets[node], error=explain(answer)))
    return outcome


def explain(run: NodeRun) -> str:
    """Why a node gave no answer, in one message: Proton's own words when Proton refused."""
    head = f"node {run.node} ({run.instance_id}): "
    if not run.reachable:
        return run.describe()
    if run.exit_code == SQL_FAILED:
        said = run.stderr.strip() or run.stdout.strip() or "no message"
        return head + "Proton refused the query: " + said
    if run.exit_code == 0 and run.detail:  # the answer came back but could not be used
        return head + run.detail
    if run.status in ("TimedOut", "ExecutionTimedOut", "Cancelled", "DeliveryTimedOut"):
        return head + f"no answer in time ({run.detail or run.status})"
    return run.describe()
