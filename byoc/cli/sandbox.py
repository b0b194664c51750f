"""`byoc sandbox start|stop|status`: moto's server on 127.0.0.1 (over TLS, with a certificate it
generates) as a local AWS for demos and trials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

sandbox_app = typer.Typer(
    help="A local AWS sandbox (moto's server on 127.0.0.1, over TLS) for demos and trials."
)


@sandbox_app.command("start")
def sandbox_start(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).",
                                      min=0, max=65535)] = 4566,
    state_dir: Annotated[Path, typer.Option(
        help="Where the sandbox records its pid and keeps its certificate.")] = Path("state"),
    plain_http_port: Annotated[int | None, typer.Option(
        "--plain-http-port", min=0, max=65535, show_default=False,
        help="Also serve the same sandbox over plain HTTP on this port (0 picks a free one): requests "
        "there are not over TLS, so the cluster bucket's policy denies them, as AWS does.")] = None,
) -> None:
    """Start the sandbox in the background (HTTPS, with a self-signed certificate generated for
    127.0.0.1) and print the environment that points byoc at it: AWS_ENDPOINT_URL=https://…,
    AWS_CA_BUNDLE=<its certificate> and dummy credentials.

    Example: eval "$(byoc sandbox start)" && byoc apply specs/dev.yaml --auto-approve
    """
    import shlex

    from byoc import sandbox

    info = sandbox.start(state_dir, port, plain_port=plain_http_port)
    for k, v in info.env().items():
        typer.echo(f"export {k}={shlex.quote(v)}")
    if info.plain_endpoint:
        typer.echo(f"# plain HTTP (not TLS) on {info.plain_endpoint}")


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
    typer.echo(f"Sandbox running at {info.endpoint} (pid {info.pid})."
               + (f" Certificate: {info.ca_bundle}." if info.ca_bundle else "")
               + (f" Plain HTTP on {info.plain_endpoint}." if info.plain_endpoint else ""))
