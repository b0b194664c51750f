"""Looking at a running cluster: `byoc logs` (the nodes' logs from CloudWatch Logs, interleaved by
time) and `byoc metrics` (charts of each node's CloudWatch metrics). The work is done in
byoc/operations (logs, metrics); this module renders it (byoc/cli/charts for the charts).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from byoc.cli.common import _engine, _load
from byoc.cli.options import NoColor, SetOpt, SpecArg
from byoc.cli.timing import phase
from byoc.cli.ui import console

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
NodeOpt = Annotated[list[str] | None, typer.Option(
    "--node", metavar="N", help="Only this node (its key, e.g. 0; repeatable). Default: every node.")]
SinceOpt = Annotated[str, typer.Option(
    "--since", metavar="WHEN", help="From this long ago (30s, 15m, 1h, 2d) or this ISO time (UTC unless "
    "it says otherwise), e.g. 2026-12-02T09:00:00Z.")]
#: seconds between two polls of --follow
FOLLOW_INTERVAL = 3.0
_STYLES = {"title": "bold", "warn": "yellow", "dim": "dim", "": ""}


def logs(
    spec: SpecArg,
    set_: SetOpt = None,
    node: NodeOpt = None,
    since: SinceOpt = "1h",
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new lines as they arrive (polls every few seconds; "
        "Ctrl-C stops).")] = False,
    grep: Annotated[str | None, typer.Option(
        "--grep", metavar="TEXT", help="Only lines containing TEXT exactly (case-sensitive; "
        "CloudWatch filters them).")] = None,
    bootstrap: Annotated[bool, typer.Option(
        "--bootstrap", help="Also the boot script's log (streams <instance>/bootstrap), once the "
        "CloudWatch agent ships it.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the events as JSON (with --follow: one JSON object per line).")] = False,
    no_color: NoColor = False,
) -> None:
    """Proton's log on every node (or --node ones) from the cluster's log group
    /aws/proton/<cluster>, interleaved by time, the node on each line. Lines of an instance no
    longer in the state (a replaced node's old one) show its instance id.

    Examples: byoc logs specs/prod.yaml --since 15m --grep Exception · byoc logs specs/prod.yaml --node 0 -f
    """
    from byoc.operations.logs import LogFollower, log_query, parse_since, read_logs

    s = _load(spec, set_)
    eng = _engine(s, 10)
    q = log_query(eng.ctx, eng.state(), node, grep, bootstrap)
    start = parse_since(since, time.time())
    con = console(no_color=no_color)
    if follow:
        follower = LogFollower(eng.ctx, q, start)
        with _stopped_by_signals() as stop:
            follow_logs(follower, lambda batch: _print_events(con, batch, as_json, True), sleep=stop.wait,
                        stop=stop)
        return
    with phase("aws"):
        events = read_logs(eng.ctx, q, start)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    if not events:
        what = f" containing {grep!r}" if grep is not None else ""
        con.print(f"No log lines{what} since {since} in {q.group}.", markup=False)
    _print_events(con, events, False, False)


def follow_logs(
    follower: Any, show: Callable[[list[Any]], None], *, sleep: Callable[[float], Any] = time.sleep,
    interval: float = FOLLOW_INTERVAL, polls: int | None = None, stop: threading.Event | None = None,
) -> int:
    """Poll ``follower`` and ``show`` each batch of new events until Ctrl-C: ``stop`` set (by
    `_stopped_by_signals`) or a KeyboardInterrupt (or ``polls`` polls, for tests); returns the number
    of polls made."""
    done = 0
    try:
        while (polls is None or done < polls) and not (stop and stop.is_set()):
            show(follower.poll())
            done += 1
            if (polls is None or done < polls) and not (stop and stop.is_set()):
                sleep(interval)
    except KeyboardInterrupt:
        pass
    return done


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[threading.Event]:
    """An event that the first SIGINT or SIGTERM sets, for a loop that stops between two steps; the
    second one interrupts at once. A poll under way finishes rather than being cut at an arbitrary
    point (a KeyboardInterrupt raised inside a finalizer is only printed, and the loop would go on).
    A signal ignored when byoc started stays ignored, as Unix tools do (a job started with `&` by a
    shell without job control has SIGINT ignored)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def first(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, first)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _label(e: Any) -> str:
    who = f"node {e.node}" if e.node != e.instance_id else e.instance_id
    return who + (" boot" if e.source == "bootstrap" else "")


def _print_events(con: Any, events: list[Any], as_json: bool, lines: bool) -> None:
    if as_json and lines:
        for e in events:
            typer.echo(json.dumps(e.to_dict()))
        return
    width = max((len(_label(e)) for e in events), default=0)
    for e in events:
        con.print(f"{e.time}  {_label(e):<{width}}  {e.message}", markup=False)


def metrics(
    spec: SpecArg,
    set_: SetOpt = None,
    node: NodeOpt = None,
    since: SinceOpt = "24h",
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Also write the charts to FILE: one self-contained HTML page "
        "(inline SVG, nothing loaded from the network).")] = None,
    no_color: NoColor = False,
) -> None:
    """Charts of each node's CPU, memory, data-disk use (against the disk alarm and Proton's 90%
    ingest stop), network, and Proton's own metrics (queries, inserted rows, merges, parts,
    memory), with min/avg/max: one batched GetMetricData for up to 500 series.

    Examples: byoc metrics specs/prod.yaml · byoc metrics specs/prod.yaml --since 7d --html m.html
    """
    from byoc.cli.charts import html_report, text_report
    from byoc.operations.metrics import cluster_metrics_report

    s = _load(spec, set_)
    eng = _engine(s, 10)
    with phase("aws"):
        report = cluster_metrics_report(eng.ctx, eng.state(), s.data["monitoring"], since=since, nodes=node)
    if html is not None:
        try:
            html.write_text(html_report(report), encoding="utf-8")
        except OSError as exc:
            from byoc.errors import ByocError

            raise ByocError(f"--html {html}: cannot write it ({exc.strerror}); give a writable path") from exc
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    con = console(no_color=no_color)
    for text, style in text_report(report):
        con.print(text, style=_STYLES[style] or None, markup=False)
    for message in report.messages:  # e.g. partial data: CloudWatch says what it left out
        con.print(f"CloudWatch: {message}", style="yellow", markup=False)
    if html is not None:
        con.print(f"\nCharts written to {html}.", markup=False)
