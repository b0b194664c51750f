"""What `byoc drift`, `byoc health` and `byoc plan` share when they run over several specs (a fleet):
the fleet options (--clusters, --shard, --notify), running the check (byoc.fleet), one line or block
per cluster, a summary, --json records, the notification and the exit code (1 if any cluster errored,
else 2 if any drifted/degraded/has changes, else 0)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from byoc.cli.ui import console, error

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors (on stderr); "
                                        "for cron, read the exit code.")]
ClustersOpt = Annotated[int, typer.Option(
    "--clusters", min=1, max=256, metavar="N",
    help="With several specs: how many clusters are checked at once (their AWS calls share the "
    "--parallelism bound).")]
ShardOpt = Annotated[str | None, typer.Option(
    "--shard", metavar="K/N",
    help="Check only the K-th of N shards of the specs (1-based, e.g. 2/4; stable: by a hash of the "
    "spec's file name), so that N runners share a fleet.")]
NotifyOpt = Annotated[list[str] | None, typer.Option(
    "--notify", metavar="sns:ARN|https://URL",
    help="After a fleet run with problems or errors, send one message listing those clusters: to an SNS "
    "topic (byoc's own credentials) or as a JSON POST to a webhook (repeatable).")]


@dataclass(frozen=True)
class FleetRun:
    """One fleet command's choices: its name, the word for a problem (drifted, degraded, changes) and
    how a cluster's record prints."""

    command: str
    problem: str
    render: Callable[[Any, Any], None]


def is_fleet(specs: list[Path], shard: str | None, notify: list[str] | None) -> bool:
    """Whether a command runs as a fleet: several specs, or a fleet-only option."""
    return len(specs) > 1 or shard is not None or bool(notify)


def run(run_: FleetRun, check: Any, specs: list[Path], *, set_: list[str] | None, parallelism: int,
        clusters: int, shard: str | None, notify: list[str] | None, as_json: bool, quiet: bool,
        no_color: bool) -> None:
    """Run ``check`` over the specs as a fleet and exit with the fleet's code."""
    from byoc.fleet import ERROR, FleetOptions, exit_code, parse_shard, pick_shard, run_fleet
    from byoc.operations.notify import message, parse_target, send

    for target in notify or ():
        parse_target(target)  # a bad target is refused before any cluster is checked
    picked = pick_shard(specs, parse_shard(shard) if shard is not None else None)
    started = time.monotonic()
    records = run_fleet(picked, check, FleetOptions(overrides=tuple(set_ or ()), parallelism=parallelism,
                                                    clusters=clusters))
    took = time.monotonic() - started
    err = console(stderr=True, no_color=no_color)
    for r in records:
        if r.status == ERROR:
            error(err, r.error or "")
    dicts = [r.to_dict() for r in records]
    if as_json and not quiet:
        summary = {s: sum(1 for r in records if r.status == s) for s in sorted({r.status for r in records})}
        typer.echo(json.dumps({"command": run_.command, "ok": exit_code(records) == 0,
                               **({"in_sync": exit_code(records) == 0} if run_.command == "drift" else {}),
                               "shard": shard, "summary": summary, "clusters": dicts,
                               "errors": [{"spec": r.spec, "error": r.error} for r in records if r.error]},
                              indent=2))
    elif not quiet:
        con = console(no_color=no_color)
        for r in records:
            if r.status != ERROR:
                run_.render(con, r)
        bad = sum(1 for r in records if r.problem)
        failed = sum(1 for r in records if r.status == ERROR)
        con.print(f"\nFleet: {len(records)} cluster(s){f' (shard {shard})' if shard else ''}: "
                  f"{len(records) - bad - failed} fine, {bad} {run_.problem}, {failed} failed "
                  f"({took:.1f}s, {sum(r.calls for r in records)} AWS calls).", markup=False)
    msg = message(run_.command, dicts, run_.problem)
    failures = 0
    for target in notify or []:
        if msg is None:
            break
        try:
            send(target, msg, run_.problem)
        except Exception as exc:  # a notification that failed is an error of the run, the rest goes on
            failures += 1
            error(err, str(exc))
    code = exit_code(records)
    raise typer.Exit(1 if failures else code)


def render_health(con: Any, r: Any) -> None:
    c = r.counts
    con.print(f"{r.spec}: cluster {r.cluster}: {r.status} "
              f"({c['healthy']} of {c['expected']} node(s) healthy)", markup=False)
    for p in (r.report or {}).get("problems", []):
        con.print(f"  - {p}", markup=False)
    for n in (r.report or {}).get("nodes", []):
        for p in n.get("problems", []):
            con.print(f"  - node {n.get('key')}: {p}", markup=False)


def render_plan(con: Any, r: Any) -> None:
    c = r.counts
    what = ("no changes" if r.status == "no_changes" else
            f"{c['add']} to add, {c['change']} to change, {c['destroy']} to destroy")
    con.print(f"{r.spec}: cluster {r.cluster}: {what}", markup=False)


HEALTH = FleetRun("health", "degraded", render_health)
PLAN = FleetRun("plan", "changes", render_plan)


def plan_fleet(specs: list[Path], set_: list[str] | None, out: Path | None, destroy: bool,
               target: list[str] | None, replace: list[str] | None, **kw: Any) -> None:
    """`byoc plan SPEC...`: each cluster's plain plan (what apply would change), as a fleet."""
    from byoc.errors import ByocError
    from byoc.fleet import plan_check

    if out is not None or destroy or target or replace:
        raise ByocError("byoc plan over several specs (or with --shard/--notify) checks for changes only: "
                        "-o, --destroy, -target and -replace take one spec")
    run(PLAN, plan_check, specs, set_=set_, **kw)
