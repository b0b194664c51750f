"""Day-2 commands: `byoc health`, `byoc backup`, `byoc backups list|prune` and `byoc restore`.

The work is done in byoc/operations (health, backup, restore); this module renders it.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from byoc.cli.common import _confirm, _duration, _engine, _load, _run
from byoc.cli.fleet import HEALTH, ClustersOpt, NotifyOpt, QuietOpt, ShardOpt, is_fleet, run
from byoc.cli.options import AdoptOpt, AutoApprove, LockTimeout, NoColor, ParOpt, SetOpt, SpecArg, SpecsArg
from byoc.cli.timing import phase
from byoc.cli.ui import console, print_plan_text, warning
from byoc.model import DEFAULT_PARALLELISM

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

backups_app = typer.Typer(help="List and prune the cluster's backups.", no_args_is_help=True)


def health(
    specs: SpecsArg,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Also ask Proton itself (GET / and /proton/ping) through the load balancer's "
            "DNS name. Never attempted against the local sandbox.",
        ),
    ] = False,
    no_color: NoColor = False,
    quiet: QuietOpt = False, parallelism: ParOpt = 10, clusters: ClustersOpt = 8, shard: ShardOpt = None,
    notify: NotifyOpt = None,
) -> None:
    """Each node's EC2 state and status checks, its health in every target group, and (with
    --probe) Proton's own answer; a cluster summary. Exit 0 healthy, 2 degraded, 1 error.
    Several specs: a fleet, as `byoc drift` runs it (one line per cluster, exit 1 if any failed).

    Example: byoc health specs/prod.yaml --probe
    """
    from byoc.fleet import health_check
    from byoc.operations.health import check_health

    if is_fleet(specs, shard, notify):
        run(HEALTH, health_check(probe), specs, set_=set_, parallelism=parallelism, clusters=clusters,
            shard=shard, notify=notify, as_json=as_json, quiet=quiet, no_color=no_color)
    spec = specs[0]
    s = _load(spec, set_)
    eng = _engine(s, parallelism)
    with phase("aws"):
        report = check_health(eng.ctx, eng.state(), expected_nodes=s.instance_count, probe=probe)
    with phase("render"):
        if as_json and not quiet:
            typer.echo(json.dumps(report.to_dict(), indent=2))
        elif not quiet:
            _print_health(console(no_color=no_color), report)
    raise typer.Exit(report.exit_code)


def _print_health(con: Any, report: Any) -> None:
    style = "bold green" if report.status == "healthy" else "bold yellow"
    con.print(f"Cluster {report.cluster}: {report.status}", style=style)
    for n in report.nodes:
        mark = "ok" if n.healthy else "!!"
        con.print(
            f"  [{mark}] node {n.key}  {n.instance_id}  {n.state}  "
            f"system check {n.system_status}, instance check {n.instance_status}",
            markup=False,
        )
        for tg, value in sorted(n.targets.items()):
            con.print(f"         {tg}: {value}", markup=False)
        for p in n.problems:
            con.print(f"         - {p}", markup=False)
    for p in report.probe:
        con.print(f"  probe {p.url}: {'ok' if p.ok else 'FAILED'} ({p.detail})", markup=False)
    if report.probe_skipped:
        con.print(f"  {report.probe_skipped}", markup=False)
    for p in report.problems:
        con.print(f"  - {p}", markup=False)


def backup(
    spec: SpecArg,
    set_: SetOpt = None,
    crash_consistent: Annotated[bool, typer.Option(
        "--crash-consistent", help="Freeze nothing and send no SSM command: every snapshot is "
        "crash-consistent (as after a power cut).")] = False,
    allow_crash_consistent: Annotated[bool, typer.Option(
        "--allow-crash-consistent", help="Back up even when some nodes cannot be frozen through SSM "
        "(unreachable, freeze failed): those nodes' snapshots are crash-consistent, and the manifest "
        "and the output say which.")] = False,
    freeze_timeout: Annotated[int, typer.Option(
        "--freeze-timeout", min=10, max=900, help="Seconds a node's data filesystem may stay frozen: "
        "each node thaws itself after that even if byoc dies; a snapshot not started within it is "
        "not called application-consistent.")] = 60,
    as_json: JsonOpt = False,
    no_color: NoColor = False,
) -> None:
    """Snapshot every node's data volume (tagged with the backup id), wait until the snapshots are
    complete, then write the manifest to s3://<bucket>/backups/<backup-id>/manifest.json.

    Application-consistent by default: through SSM, each node flushes and freezes its data
    filesystem (fsfreeze) while its snapshot starts, and is thawed as soon as it has. A node that
    cannot be frozen fails the backup, unless --allow-crash-consistent.

    Example: byoc backup specs/prod.yaml
    """
    from byoc.operations.backup import bucket_of, manifest_key, take_backup

    s = _load(spec, set_)
    eng = _engine(s, 10)
    with eng.backend.lock("backup"):
        m = take_backup(eng.ctx, s, crash_consistent=crash_consistent,
                        allow_crash_consistent=allow_crash_consistent, freeze_timeout=freeze_timeout)
    if as_json:
        typer.echo(json.dumps(m.to_dict(), indent=2))
        return
    con = console(no_color=no_color)
    for key, n in sorted(m.nodes.items()):
        con.print(
            f"node {key}: {n.volume_id} ({n.size_gb} GiB, {n.availability_zone}) → {n.snapshot_id}  "
            f"{_CONSISTENCY[n.consistency]}",
            markup=False,
        )
    err = console(stderr=True, no_color=no_color)
    for note in m.notes:
        warning(err, note)
    con.print(
        f"\nBackup {m.backup_id} complete, {_SUMMARY.get(m.consistency, m.consistency)}: "
        f"s3://{bucket_of(s)}/{manifest_key(m.backup_id)}\n"
        f"Restore it with: byoc restore {spec} {m.backup_id}",
        style="bold green",
        markup=False,
    )


#: how a snapshot's consistency reads on the terminal
_CONSISTENCY = {
    "application": "application-consistent (frozen through SSM)",
    "crash": "crash-consistent (not frozen)",
}
_SUMMARY = {"application": "application-consistent", "crash": "crash-consistent",
            "mixed": "some nodes crash-consistent (see above)"}


@backups_app.command("list")
def backups_list(
    spec: SpecArg, set_: SetOpt = None, as_json: JsonOpt = False, no_color: NoColor = False,
    final: Annotated[bool, typer.Option(
        "--final", help="List the final snapshots instead: taken before byoc deleted a data volume "
        "(scale-down, restore), with the node they came from, from the state and from AWS's tags.")]
    = False,
) -> None:
    """The cluster's backups, oldest first: complete, incomplete (interrupted: snapshots without a
    manifest) or damaged (snapshots missing). With --final, the final snapshots of deleted data
    volumes (also one an interrupted run did not record in the state).

    Examples: byoc backups list specs/prod.yaml · byoc backups list specs/prod.yaml --final
    """
    from byoc.operations.backup import list_backups

    s = _load(spec, set_)
    if final:
        _list_final(s, as_json, no_color)
        return
    found = list_backups(_engine(s, 10).ctx, s)
    if as_json:
        typer.echo(json.dumps([b.to_dict() for b in found], indent=2))
        return
    _print_backups(console(no_color=no_color), found, f"No backups of cluster {s.cluster_name}.")


def _list_final(s: Any, as_json: bool, no_color: bool) -> None:
    from byoc.toolbox import final_snapshots

    found = final_snapshots(_engine(s, 10))
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    con = console(no_color=no_color)
    if not found:
        con.print(f"No final snapshots of cluster {s.cluster_name}.")
    for f in found:
        where = "recorded in the state" if f["recorded"] else "NOT in the state (an interrupted run took it)"
        if not f["in_aws"]:
            where = "recorded in the state, but no longer in AWS (deleted)"
        con.print(f"{f['snapshot_id']}  {f['time'] or '-'}  {f['state']:<10}  node {f['node'] or '?'} "
                  f"({f['address'] or '?'}, {f['volume_id'] or '?'})  {where}", markup=False)


def _print_backups(con: Any, found: list[Any], empty: str) -> None:
    if not found:
        con.print(empty)
    for b in found:
        d = b.to_dict()
        nodes = f"{d['nodes']} node(s)" if d["nodes"] is not None else f"{len(b.snapshot_ids)} snapshot(s)"
        con.print(
            f"{b.backup_id}  {d['created_at']}  {b.status:<10}  {nodes:<12}  {d['consistency'] or '-'}"
            + (f"  ({b.problem})" if b.problem else ""),
            markup=False,
        )


@backups_app.command("prune")
def backups_prune(
    spec: SpecArg,
    set_: SetOpt = None,
    auto_approve: AutoApprove = False,
    no_color: NoColor = False,
) -> None:
    """Delete the snapshots and manifests of backups older than storage.backups.retention_days,
    and of interrupted backups. Lists them first and asks.

    Example: byoc backups prune specs/prod.yaml
    """
    from byoc.operations.backup import delete_backups, list_backups, prune_candidates

    s = _load(spec, set_)
    eng = _engine(s, 10)
    days = int((s.data["storage"].get("backups") or {}).get("retention_days", 7))
    con = console(no_color=no_color)
    with eng.backend.lock("prune backups"):
        doomed = prune_candidates(list_backups(eng.ctx, s), days, time.time())
        if not doomed:
            con.print(
                f"Nothing to prune: no backup of {s.cluster_name} is older than {days} day(s) or incomplete."
            )
            return
        con.print(f"These backups are older than {days} day(s) or incomplete and would be deleted:")
        _print_backups(con, doomed, "")
        _confirm(f"Delete these {len(doomed)} backup(s)? There is no undo.", auto_approve, "prune")
        result = delete_backups(eng.ctx, s, doomed)
    con.print(
        f"Deleted {len(result.removed)} backup(s) ({len(result.deleted_snapshots)} snapshot(s)).",
        style="bold green",
    )


def restore(
    spec: SpecArg,
    backup_id: Annotated[
        str,
        typer.Argument(
            help="The backup, as `byoc backups list` shows it.", metavar="BACKUP_ID", show_default=False
        ),
    ],
    set_: SetOpt = None,
    auto_approve: AutoApprove = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Restore even when the backup does not match the spec (cluster name, node "
            "count, AZs): the nodes both have are restored.",
        ),
    ] = False,
    adopt: AdoptOpt = False,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
    no_color: NoColor = False,
    lock_timeout: LockTimeout = "0s",
) -> None:
    """Replace each node's data volume by one created from the backup's snapshot: a plan like any
    other (-/+ with the snapshot id), then confirmation. Each node is stopped before its volume is
    detached and replaced along with it (its boot script finds the volume by id); the old volumes
    get a final snapshot first.

    Example: byoc restore specs/prod.yaml backup-production-proton-1767225600
    """
    from byoc.operations.restore import plan_restore
    from byoc.render import render_plan

    s = _load(spec, set_)
    eng = _engine(s, parallelism, adopt)
    con = console(no_color=no_color)
    with eng.backend.lock("restore", timeout=_duration(lock_timeout)):
        p, points = plan_restore(eng, backup_id, force=force)
        err = console(stderr=True, no_color=no_color)
        for m in points.mismatches:
            warning(err, f"--force: {m}")
        print_plan_text(con, render_plan(p))
        if not p.has_changes:
            con.print("Nothing to restore: the data volumes were already created from this backup.")
            return
        _confirm(
            f"Restore cluster {s.cluster_name} from {backup_id}? The nodes are stopped and "
            "replaced; their current data volumes are snapshotted, then deleted.",
            auto_approve,
            "restore",
        )
        _run(eng, p, no_color)
