"""The typer application, assembled: the root options, then every command from the modules that
define them (`core`, `day2`, `drift`, `nodeops`, `observe`, `operations`, `scale`, `state`) and the command
groups (`backups`, `sandbox`, `state`), in the order `byoc --help` lists them. Work is delegated to the
engine."""

from __future__ import annotations

from typing import Annotated

import typer

from byoc.cli import core, day2, drift, iam, nodeops, observe, operations, sandbox, scale, state

app = typer.Typer(
    name="byoc",
    help=(
        "Deploy and run Timeplus Proton clusters in your own AWS account.\n\n"
        "Typical use:  byoc validate specs/prod.yaml · byoc plan specs/prod.yaml · "
        "byoc apply specs/prod.yaml · byoc destroy specs/prod.yaml"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from byoc import __version__

        typer.echo(f"byoc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True,
        help="Log each AWS call (service, action, duration, retries) to stderr; -vv adds byoc's "
        "own debug messages. Request bodies are never logged.")] = 0,
) -> None:
    """Deploy and run Timeplus Proton clusters in your own AWS account."""
    if verbose:
        from byoc.cli.ui import enable_logging

        enable_logging(verbose)


# every command and group, in the order `byoc --help` lists them (commands first, then groups)
app.command()(core.validate)
app.command()(core.graph)
app.command()(core.plan)
app.command()(core.apply)
app.command()(core.destroy)
app.command()(core.output)
app.command()(core.show)
app.command("force-unlock")(core.force_unlock)
app.add_typer(day2.backups_app, name="backups")
app.command()(day2.health)
app.command()(observe.logs)
app.command()(observe.metrics)
app.command("iam-policy")(iam.iam_policy)
app.command()(nodeops.query)
app.command()(day2.backup)
app.command()(day2.restore)
app.command("rotate-password")(nodeops.rotate_password)
app.command()(drift.drift)
app.command()(operations.preflight)
app.command()(operations.cost)
app.add_typer(sandbox.sandbox_app, name="sandbox")
app.command()(scale.scale)
app.add_typer(state.state_app, name="state")
app.command("import")(state.import_)
app.command()(state.refresh)

__all__ = ["app"]
