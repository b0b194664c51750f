"""The state toolbox: `byoc state list|show|rm|mv|migrate`, `byoc import` and `byoc refresh`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from byoc.cli.common import _engine, _load, render_drift
from byoc.cli.options import NoColor, ParOpt, SetOpt, SpecArg
from byoc.cli.ui import console
from byoc.model import DEFAULT_PARALLELISM, to_jsonable

state_app = typer.Typer(
    name="state", help="Inspect and edit the state: list, show, rm (forget), mv, migrate (local ⇄ S3), "
    "restore-backup.",
    no_args_is_help=True)

AddressArg = Annotated[str, typer.Argument(help='A resource address, e.g. aws_instance.node["0"].',
                                           show_default=False, metavar="ADDRESS")]


@state_app.command("list")
def state_list(spec: SpecArg, set_: SetOpt = None) -> None:
    """List the addresses the state records, with their AWS ids.

    Example: byoc state list specs/prod.yaml
    """
    state = _engine(_load(spec, set_), 1).state()
    for address, r in sorted((state.resources if state else {}).items()):
        typer.echo(f"{address}\t{r.id}")


@state_app.command("show")
def state_show(
    spec: SpecArg,
    address: AddressArg,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Show one resource as the state records it (last-applied attributes, AWS id, dependencies).

    Example: byoc state show specs/prod.yaml 'aws_instance.node["0"]'
    """
    from byoc.errors import StateError

    state = _engine(_load(spec, set_), 1).state()
    r = state.resources.get(address) if state else None
    if r is None:
        raise StateError(f"{address} is not in the state; `byoc state list SPEC` shows what is")
    if as_json:
        typer.echo(json.dumps(r.to_dict(), indent=2))
        return
    typer.echo(f"# {address}:")
    typer.echo(f"{r.kind} (id {r.id})")
    for k, v in sorted({**r.props, **r.attrs}.items()):
        typer.echo(f"    {k} = {json.dumps(to_jsonable(v), sort_keys=True)}")
    if r.depends_on:
        typer.echo(f"    depends on: {', '.join(r.depends_on)}")


@state_app.command("rm")
def state_rm(
    spec: SpecArg,
    addresses: Annotated[list[str], typer.Argument(help="The addresses to forget.", show_default=False,
                                                   metavar="ADDRESS...")],
    set_: SetOpt = None,
) -> None:
    """Forget resources: remove them from the state, never from AWS.

    They keep byoc's tags: `byoc drift` lists them as unmanaged, and the next apply adopts them
    again if the spec still wants them (remove them from the spec too to let them go).

    Example: byoc state rm specs/prod.yaml 'aws_cloudwatch_dashboard.main'
    """
    from byoc.toolbox import state_rm as rm

    for r in rm(_engine(_load(spec, set_), 1), addresses):
        typer.echo(f"Removed {r.address} ({r.id}) from the state; it still exists in AWS.")


@state_app.command("mv")
def state_mv(spec: SpecArg, src: AddressArg, dst: AddressArg, set_: SetOpt = None) -> None:
    """Record a resource under a new address (same kind), re-tagging it in AWS to match.

    Example: byoc state mv specs/prod.yaml 'aws_eip.nat["us-west-2a"]' 'aws_eip.nat["us-west-2b"]'
    """
    from byoc.toolbox import state_mv as mv

    r = mv(_engine(_load(spec, set_), 1), src, dst)
    typer.echo(f"Moved {src} to {dst} ({r.id}).")


@state_app.command("restore-backup")
def state_restore_backup(
    spec: SpecArg,
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing state file by the backup.")]
    = False,
) -> None:
    """Put the local state's backup back in place (after a lost or damaged state file).

    Takes the lock and copies <cluster>.json.backup (or, when newer, a temporary that an
    interrupted write left, .<cluster>.*.tmp) to <cluster>.json. Refused while a state file exists,
    unless --force. Run `byoc plan SPEC` afterwards: what was done after the backup was written is
    found again in AWS by its tags.

    Example: byoc state restore-backup specs/prod.yaml
    """
    from byoc.toolbox import restore_backup

    s = _load(spec, set_)
    engine = _engine(s, 1)
    source, state = restore_backup(engine, force=force)
    typer.echo(f"Restored the state of cluster {state.cluster} from {source}: serial {state.serial}, "
               f"lineage {state.lineage}, {len(state.resources)} resources, to {engine.backend.describe()}. "
               f"Run `byoc plan {spec}` to see how it differs from AWS.")


def import_(
    spec: SpecArg,
    address: AddressArg,
    aws_id: Annotated[str, typer.Argument(help="The AWS id (or name, for kinds named by name).",
                                          show_default=False, metavar="AWS_ID")],
    set_: SetOpt = None,
    parallelism: ParOpt = DEFAULT_PARALLELISM,
) -> None:
    """Start managing an existing AWS resource as ADDRESS, which the spec must describe.

    byoc reads it through its kind and records it; EC2 resources are tagged as the cluster's,
    others must carry byoc's tags already (the message says which). The next plan shows how it
    differs from the spec.

    Example: byoc import specs/prod.yaml aws_vpc.main vpc-0abc123
    """
    r = _engine(_load(spec, set_), parallelism).import_resource(address, aws_id)
    typer.echo(f"Imported {r.id} as {address}. Run `byoc plan {spec}` to see how it differs from the spec.")


def refresh(
    spec: SpecArg, set_: SetOpt = None, parallelism: ParOpt = DEFAULT_PARALLELISM, no_color: NoColor = False
) -> None:
    """Update the state's recorded attributes from AWS, without changing AWS.

    Resources deleted outside byoc are forgotten; unmanaged ones are not added (apply adopts
    them). Afterwards `byoc drift` reports no modified attributes, but `byoc plan` still shows
    what apply would change to make AWS match the spec.

    Example: byoc refresh specs/prod.yaml
    """
    state, report = _engine(_load(spec, set_), parallelism).refresh_state()
    con = console(no_color=no_color)
    con.print(render_drift(report), markup=False, highlight=False, end="")
    con.print(f"Refreshed the state of cluster {state.cluster}: {len(state.resources)} resources, "
              f"serial {state.serial}.", markup=False, highlight=False)


@state_app.command("migrate")
def migrate(
    spec: SpecArg,
    to: Annotated[str, typer.Option("--to", help="Where the state goes: s3 (state.bucket of the spec) "
                                    "or local (state.path).", metavar="s3|local")],
    set_: SetOpt = None,
) -> None:
    """Copy the state to the S3 backend (or back to a local file), keeping lineage and serial.

    Both stores are locked during the copy. Refused when the target holds state of another
    lineage or a newer serial. Afterwards set state.backend in the spec to the target.

    Example: byoc state migrate specs/prod.yaml --to s3
    """
    from byoc.engine import backend_for
    from byoc.errors import ByocError
    from byoc.state.migrate import migrate_state

    if to not in {"s3", "local"}:
        raise ByocError(f"--to must be s3 or local, not {to!r}")
    s = _load(spec, set_)
    src = backend_for(s, kind="local" if to == "s3" else "s3")
    dst = backend_for(s, kind=to)
    state, copied = migrate_state(src, dst)
    if not copied:
        typer.echo(f"{dst.describe()} already holds serial {state.serial} of lineage {state.lineage}; "
                   "nothing to copy.")
    else:
        typer.echo(f"Copied the state (serial {state.serial}, lineage {state.lineage}, "
                   f"{len(state.resources)} resources) from {src.describe()} to {dst.describe()}.")
    configured = (s.data.get("state") or {}).get("backend", "local")
    if configured != to:
        typer.echo(f"Now set state.backend: {to} in {spec}; the copy at {src.describe()} is left as it was.")
