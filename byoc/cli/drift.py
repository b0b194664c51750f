"""`byoc drift`: what changed in AWS behind byoc's back, for people and for cron (exit codes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from byoc.cli.common import _engine, _load, render_drift
from byoc.cli.fleet import ClustersOpt, FleetRun, NotifyOpt, ShardOpt, is_fleet, run
from byoc.cli.options import NoColor, ParOpt, SetOpt
from byoc.cli.timing import phase
from byoc.cli.ui import console, error
from byoc.drift import DriftReport
from byoc.model import DEFAULT_PARALLELISM


def drift(
    specs: Annotated[list[Path], typer.Argument(help="One or more cluster specs (YAML).", show_default=False,
                                                metavar="SPEC...")],
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors (on stderr); "
                                        "for cron, read the exit code.")] = False,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
    clusters: ClustersOpt = 8,
    shard: ShardOpt = None,
    notify: NotifyOpt = None,
    no_color: NoColor = False,
) -> None:
    """Report what changed in AWS outside byoc: modified attributes (expected = last applied,
    actual = AWS now), missing resources, and unmanaged ones (tagged for the cluster, in no
    state). Changes nothing. Exit 0 in sync, 2 drift, 1 error.

    Accepted differences go in the spec's drift.ignore list. `byoc apply SPEC` repairs drift.

    With several specs (a fleet, e.g. one per customer account, each with aws.assume_role) the
    clusters are checked side by side, --clusters at a time, with at most --parallelism AWS calls
    at once across all; one cluster's failure never stops the others; --json gives one record per
    cluster; --notify tells someone when any drifted or failed.

    Examples: byoc drift specs/prod.yaml · byoc drift --quiet specs/*.yaml || alert ·
    byoc drift -q --shard 1/4 --notify sns:arn:aws:sns:us-east-1:111122223333:drift specs/customers/*.yaml
    """
    from byoc.errors import ByocError
    from byoc.fleet import drift_check

    if is_fleet(specs, shard, notify):
        run(FleetRun("drift", "drifted", _render_record), drift_check, specs, set_=set_,
            parallelism=parallelism, clusters=clusters, shard=shard, notify=notify, as_json=as_json,
            quiet=quiet, no_color=no_color)

    reports: list[DriftReport] = []
    errors: list[dict[str, str]] = []
    err = console(stderr=True, no_color=no_color)
    for spec in specs:
        try:
            engine = _engine(_load(spec, set_), parallelism)
            with phase("aws"):
                reports.append(engine.drift())
        except ByocError as exc:
            errors.append({"spec": str(spec), "error": str(exc)})
            message = str(exc)  # a spec's own errors already start with its name
            error(err, message if message.startswith(f"{spec}:") else f"{spec}: {message}")
    with phase("render"):
        if as_json and not quiet:
            typer.echo(json.dumps({
                "in_sync": not errors and all(r.in_sync for r in reports),
                "clusters": [r.to_dict() for r in reports],
                "errors": errors,
            }, indent=2))
        elif not quiet:
            con = console(no_color=no_color)
            for r in reports:
                con.print(render_drift(r), markup=False, highlight=False, end="")
    if errors:
        raise typer.Exit(1)
    if any(not r.in_sync for r in reports):
        raise typer.Exit(2)


def _render_record(con: Any, record: Any) -> None:
    con.print(f"{record.spec}: " + render_drift(record.value), markup=False, highlight=False, end="")
