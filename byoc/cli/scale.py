"""`byoc scale`: change the number of nodes, plan and apply in one step, then write the new count
into the spec file (its only source of truth)."""

from __future__ import annotations

from typing import Annotated

import typer

from byoc.cli.common import _confirm, _duration, _engine, _load, _run, cost_footer, preflight_or_stop
from byoc.cli.options import AdoptOpt, AutoApprove, LockTimeout, NoColor, ParOpt, SetOpt, SpecArg
from byoc.cli.ui import console, print_plan_text, warning
from byoc.model import DEFAULT_PARALLELISM


def scale(
    spec: SpecArg,
    count: Annotated[int, typer.Option(
        "--count", show_default=False,
        help="The number of nodes wanted (the spec's bounds apply, as for --set).")],
    set_: SetOpt = None,
    auto_approve: AutoApprove = False,
    skip_preflight: Annotated[bool, typer.Option(
        "--skip-preflight", help="Do not run `byoc preflight`'s checks before applying.")] = False,
    adopt: AdoptOpt = False,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
    no_color: NoColor = False,
    lock_timeout: LockTimeout = "0s",
) -> None:
    """Scale the cluster to N nodes: plan and apply as if --set compute.instance_count=N.

    New nodes go to the next AZs in turn. Removing nodes takes the highest-numbered ones: each
    is deregistered from the target groups and drained, then terminated, and its data volume
    gets a final snapshot (reported and recorded in the state) before it is deleted. On success
    compute.instance_count is updated in the spec file in place (comments kept). The state is
    STATE.PATH/<cluster>.json; a relative state.path (and the default, state/) is relative to the
    working directory, as in Terraform.

    Examples: byoc scale specs/prod.yaml --count 5 · byoc scale specs/prod.yaml --count 2 --auto-approve
    """
    from byoc.errors import ByocError
    from byoc.operations.scale import counts_overridden, plan_scale, scaled_spec, update_spec_file
    from byoc.render import render_plan

    s = _load(spec, set_)
    if counts_overridden(s):
        raise ByocError("compute.instance_count cannot be --set for `byoc scale`; give the count as --count")
    scaled_spec(s, count)  # a bad count is refused before anything else happens
    engine = _engine(s, parallelism, adopt)
    con = console(no_color=no_color)
    with engine.backend.lock("scale", timeout=_duration(lock_timeout)):
        sp = plan_scale(engine, count)
        for w in sp.engine.spec.warnings:
            warning(console(stderr=True, no_color=no_color), w)
        print_plan_text(con, render_plan(sp.plan))
        if sp.plan.has_changes:
            con.print(f"\nScaling cluster {s.cluster_name} from {sp.current} to {count} node(s)"
                      + (f"; adding node(s) {', '.join(sp.added)}" if sp.added else "")
                      + (f"; removing node(s) {', '.join(sp.removed)} (final snapshot of each data "
                         "volume first)" if sp.removed else "") + ".")
            cost_footer(con, sp.plan)
            if not skip_preflight:
                preflight_or_stop(sp.engine, sp.engine.spec, sp.plan, no_color)
            _confirm(f"Do you want to scale cluster {s.cluster_name} to {count} node(s)?",
                     auto_approve, "scale")
            _run(sp.engine, sp.plan, no_color)
        if s.instance_count == count:
            return
        line, problem = update_spec_file(s.source, count)
    if problem is not None:
        warning(console(stderr=True, no_color=no_color), problem)
    else:
        con.print(f"Updated {s.source}:{line}: compute.instance_count: {count}")
