"""`byoc state …`: tools for the state itself (migrate between the local and S3 backends)."""

from __future__ import annotations

from typing import Annotated

import typer

from byoc.cli.app import SetOpt, SpecArg, _load, app

state_app = typer.Typer(name="state", help="Work with a cluster's state: migrate it between backends.",
                        no_args_is_help=True)
app.add_typer(state_app, name="state")


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
