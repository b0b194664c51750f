"""Commands that act on the nodes themselves through SSM Run Command: `byoc query` and
`byoc rotate-password`. The work is in byoc/operations (query, rotate); this module renders it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from byoc.cli.common import _confirm, _duration, _engine, _load
from byoc.cli.options import AutoApprove, LockTimeout, NoColor, SetOpt, SpecArg
from byoc.cli.timing import phase
from byoc.cli.ui import console, error

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
NodeOpt = Annotated[list[str] | None, typer.Option(
    "--node", metavar="NODE",
    help="The node to ask, by key (0, 1 …; repeatable), or `all` for every node. Default: the first node.")]


def query(
    spec: SpecArg,
    sql: Annotated[str, typer.Argument(help="The SQL to run, e.g. \"SELECT version()\".", metavar="SQL",
                                       show_default=False)],
    node: NodeOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    max_seconds: Annotated[int, typer.Option(
        "--max-seconds", min=1, max=3600,
        help="Proton stops the query after this long (max_execution_time); SSM waits a little more.")] = 60,
    no_color: NoColor = False,
) -> None:
    """Run SQL on a node through SSM Run Command (no open port or SSH; works behind an internal load
    balancer) as Proton's `default` user, with the admin password read on the node, and print the
    result as a table. It runs in table mode on the batch port 8123: a streaming query (Proton's
    default mode, on 3218) would never end. Each node is a separate Proton: --node all asks each.
    Exit 0 ok, 1 when a node refused the query (Proton's message) or could not be reached.

    Example: byoc query specs/prod.yaml "SELECT version()" --node all
    """
    from byoc.operations.query import run_query

    s = _load(spec, set_)
    eng = _engine(s, 10)
    with phase("aws"):
        outcome = run_query(eng.ctx, eng.state(), sql, nodes=node, max_seconds=max_seconds)
    with phase("render"):
        if as_json:
            typer.echo(json.dumps(outcome.to_dict(), indent=2, default=str))
        else:
            _print_outcome(outcome, no_color)
    raise typer.Exit(0 if outcome.ok else 1)


def _print_outcome(outcome: Any, no_color: bool) -> None:
    from rich import box
    from rich.table import Table

    con = console(no_color=no_color)
    err = console(stderr=True, no_color=no_color)
    for a in outcome.answers:
        label = f"node {a.node} ({a.instance_id})"
        if outcome.first_node_only:
            label += ": the first node; --node all asks every node"
        if a.result is None:
            error(err, a.error or f"node {a.node}: no answer")
            continue
        con.print(label, style="bold")
        r = a.result
        if not r.columns:
            con.print("  (no result: the statement returned nothing)")
            continue
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for name, kind in zip(r.columns, r.types, strict=False):
            table.add_column(f"{name}\n{kind}")
        for row in r.rows:
            table.add_row(*(_cell(v) for v in row))
        con.print(table)
        elapsed = r.statistics.get("elapsed")
        took = f" in {elapsed:.3f} s" if isinstance(elapsed, (int, float)) else ""
        con.print(f"{len(r.rows)} row(s){took}")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def rotate_password(
    spec: SpecArg,
    set_: SetOpt = None,
    auto_approve: AutoApprove = False,
    as_json: JsonOpt = False,
    no_color: NoColor = False,
    lock_timeout: LockTimeout = "0s",
) -> None:
    """Put a new generated admin password in the cluster's secret (the old one stays as its
    AWSPREVIOUS version) and apply it node by node through SSM: each node reads it with its own
    role, rewrites its users override (Proton reloads it) and must log in with it, answer SELECT 1
    and be healthy in every target group before the next one goes. A node that fails keeps the old
    password and stops the roll (exit 1); run the command again to resume with the same new password.
    Clients using the admin password must switch to the new one: asks first unless --auto-approve.
    With security.password_rotation on, Secrets Manager's rotation function does the roll: the
    command starts a rotation now (RotateSecret) and says where to follow it; it refuses while a
    rotation is already in progress.

    Example: byoc rotate-password specs/prod.yaml
    """
    from byoc.errors import ByocError
    from byoc.operations.rotate import RotationError, plan_rotation
    from byoc.operations.rotate import rotate_password as rotate

    s = _load(spec, set_)
    eng = _engine(s, 10)
    con = console(no_color=no_color, stderr=as_json)
    with eng.backend.lock("rotate-password", timeout=_duration(lock_timeout)):
        state = eng.state()
        with phase("aws"):
            plan = plan_rotation(eng.ctx, state)
        con.print(plan.describe(), markup=False)
        _confirm(
            f"Rotate the admin password of cluster {s.cluster_name}? Clients that log in as `default` "
            "with the admin password must read the new one from the secret; until a node has moved, "
            "it still takes the old one.",
            auto_approve,
            "rotate-password",
        )

        def progress(node: str, what: str) -> None:
            con.print(f"node {node}: {what}" if node else what, markup=False)

        try:
            result = rotate(eng.ctx, state, plan, progress=progress)
        except RotationError as exc:
            if as_json:
                typer.echo(json.dumps(exc.result.to_dict(), indent=2))
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM mid-roll: say where that leaves the cluster
            raise ByocError(
                "password rotation interrupted. The secret may already hold the new password "
                "(AWSCURRENT, the old one kept as AWSPREVIOUS); a node whose SSM command was sent "
                "finishes it on its own. Run `byoc rotate-password` again: it resumes with the same "
                "new password."
            ) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.started:
        name = (plan.function or "").rsplit(":", 1)[-1]
        con.print(
            f"\nSecrets Manager is rotating the admin password of {s.cluster_name} (version "
            f"{result.version_id}): its function {name} moves the nodes one by one and makes the new "
            f"password AWSCURRENT when every node has it. Follow it with: aws logs tail /aws/lambda/{name} "
            f"--follow --region {s.region}",
            style="bold green", markup=False,
        )
        return
    con.print(
        f"\nPassword rotation of {s.cluster_name} complete: every node uses the new password "
        f"(secret version {result.version_id}). Read it with: aws secretsmanager get-secret-value "
        f"--secret-id {plan.secret_arn} --query SecretString --output text",
        style="bold green", markup=False,
    )
