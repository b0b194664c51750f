"""`byoc preflight` and `byoc cost` (the checks and cost footer that plan and apply show are in
byoc.cli.common)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from byoc.cli.common import _engine, _load
from byoc.cli.options import NoColor, SetOpt, SpecArg
from byoc.cli.ui import console, print_checks


def preflight(
    spec: SpecArg,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    no_color: NoColor = False,
) -> None:
    """Check the AWS account before deploying: credentials, region and AZs, instance type
    offered in each AZ, quotas (vCPUs, VPCs, Elastic IPs, NAT gateways, load balancers), AMI,
    bucket name, key pair and certificate. Exit 1 when a check fails.

    Also run by `byoc apply` (skip it with --skip-preflight).

    Example: byoc preflight specs/prod.yaml
    """
    from byoc.operations.preflight import failed, run_preflight

    s = _load(spec, set_)
    checks = run_preflight(_engine(s, 10).ctx, s)
    if as_json:
        typer.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        print_checks(console(no_color=no_color), checks)
    if failed(checks):
        raise typer.Exit(1)


def cost(
    spec: SpecArg,
    set_: SetOpt = None,
    usage: Annotated[bool, typer.Option(
        "--usage", help="Also read the last 7 days of each node's CPU from CloudWatch and suggest "
        "right-sizing (average under 40%: one size smaller; sustained high: one larger).")] = False,
    no_color: NoColor = False,
) -> None:
    """Estimate the cluster's monthly cost from byoc's price table (approximate; the table's
    date and region are shown). No AWS call unless --usage.

    Examples: byoc cost specs/prod.yaml · byoc cost specs/prod.yaml --usage
    """
    from byoc import blueprint
    from byoc.cost import estimate, render_estimate

    s = _load(spec, set_)
    con = console(no_color=no_color)
    con.print(render_estimate(estimate(blueprint.build(s), s.region)))
    if usage:
        _usage(con, s)


def _usage(con: Any, spec: Any) -> None:
    from byoc.cost import suggest
    from byoc.engine import backend_for
    from byoc.operations.usage import cpu_usage

    state = backend_for(spec).read()
    nodes = {a: r for a, r in (state.resources.items() if state else []) if r.kind == "aws_instance"}
    if not nodes:
        con.print("\nNo nodes in the state yet: apply the spec first, then ask for --usage.")
        return
    engine = _engine(spec, 10)
    found = cpu_usage(engine.ctx, [r.id for r in nodes.values()])
    con.print("\nCPU over the last 7 days (CloudWatch AWS/EC2 CPUUtilization):")
    for address, r in sorted(nodes.items()):
        u = found.get(r.id)
        itype = str(r.props.get("instance_type"))
        avg = "no data" if u is None or u.average is None else f"average {u.average:.0f}%"
        advice = suggest(itype, u) if u is not None else None
        con.print(f"  {address} ({r.id}, {itype}): {avg}" + (f" — {advice}" if advice else ""))
