"""`byoc sandbox start|stop|status`: moto's server on 127.0.0.1 as a local AWS for demos and trials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

sandbox_app = typer.Typer(help="A local AWS sandbox (moto's server on 127.0.0.1) for demos and trials.")


@sandbox_app.command("start")
def sandbox_start(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).",
                                      min=0, max=65535)] = 4566,
    state_dir: Annotated[Path, typer.Option(help="Where the sandbox records its pid.")] = Path("state"),
) -> None:
    """Start the sandbox in the background and print the environment that points byoc at it.

    Example: eval "$(byoc sandbox start)" && byoc apply specs/dev.yaml --auto-approve
    """
    from byoc import sandbox

    info = sandbox.start(state_dir, port)
    for k, v in info.env().items():
        typer.echo(f"export {k}={v}")


@sandbox_app.command("stop")
def sandbox_stop(
    state_dir: Annotated[Path, typer.Option(help="Where the sandbox recorded its pid.")] = Path("state"),
) -> None:
    """Stop the sandbox (everything in it is forgotten).

    Example: byoc sandbox stop
    """
    from byoc import sandbox

    info = sandbox.stop(state_dir)
    typer.echo("Sandbox stopped." if info else "No sandbox was running.")


@sandbox_app.command("status")
def sandbox_status(
    state_dir: Annotated[Path, typer.Option(help="Where the sandbox recorded its pid.")] = Path("state"),
) -> None:
    """Say whether the sandbox runs, and where (exit 1 when it does not).

    Example: byoc sandbox status
    """
    from byoc import sandbox

    info = sandbox.status(state_dir)
    if info is None:
        typer.echo("No sandbox is running.")
        raise typer.Exit(1)
    if info.busy:
        typer.echo(f"Sandbox running at {info.endpoint} (pid {info.pid}), but busy: it accepts "
                   f"connections and did not answer within {sandbox.STATUS_TIMEOUT:g}s.")
        return
    typer.echo(f"Sandbox running at {info.endpoint} (pid {info.pid}).")
