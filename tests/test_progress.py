"""The apply progress display: Terraform's "Still creating... [10s elapsed]" lines, with and without
a terminal, driven by an injected clock (no test waits for 10 s)."""

from __future__ import annotations

import io
import time

from rich.console import Console

from byoc.cli.ui import Progress
from byoc.executor import Event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, no_color=True, width=200, highlight=False,
                   markup=False), out


def test_still_lines_every_interval_per_resource_in_flight_until_done() -> None:
    con, out = _console()
    clock = Clock()
    p = Progress(con, interval=10, clock=clock, ticker=False)
    p(Event("start", 'aws_nat_gateway.main["us-west-2a"]', "create"))
    clock.now += 4
    p(Event("start", "aws_lb.main", "destroy"))
    p(Event("start", "aws_iam_role.node", "update"))
    clock.now += 6
    p.tick()
    assert out.getvalue().splitlines()[3:] == [
        'aws_nat_gateway.main["us-west-2a"]: Still creating... [10s elapsed]']
    clock.now += 4
    p.tick()
    assert out.getvalue().splitlines()[4:] == ["aws_lb.main: Still destroying... [10s elapsed]",
                                               "aws_iam_role.node: Still modifying... [10s elapsed]"]
    p(Event("done", "aws_lb.main", "destroy", elapsed=11.0))
    p(Event("failed", "aws_iam_role.node", "update", elapsed=11.0))
    clock.now += 56  # a tick that comes late prints one line, with the real elapsed time
    p.tick()
    assert out.getvalue().splitlines()[-1] == (
        'aws_nat_gateway.main["us-west-2a"]: Still creating... [1m10s elapsed]')
    p(Event("done", 'aws_nat_gateway.main["us-west-2a"]', "create", elapsed=70.0, aws_id="nat-1"))
    before = out.getvalue()
    clock.now += 100
    p.tick()
    assert out.getvalue() == before  # nothing in flight: nothing more
    p.close()


def test_a_note_is_a_line_of_its_own_and_keeps_the_operation_in_flight() -> None:
    con, out = _console()
    clock = Clock()
    p = Progress(con, interval=10, clock=clock, ticker=False)
    p(Event("start", "aws_lb.main", "destroy"))
    p(Event("note", "aws_lb.main", "destroy", message="deletion protection turned off"))
    clock.now += 10
    p.tick()
    p(Event("done", "aws_lb.main", "destroy", elapsed=12.0))
    assert out.getvalue().splitlines() == [
        "aws_lb.main: Destroying...", "aws_lb.main: deletion protection turned off",
        "aws_lb.main: Still destroying... [10s elapsed]", "aws_lb.main: Destruction complete after 12s"]
    p.close()


def test_the_ticker_thread_prints_and_stops_on_close() -> None:
    con, out = _console()
    p = Progress(con, interval=0.05)
    p(Event("start", "aws_lb.main", "create"))
    deadline = time.monotonic() + 10
    while "aws_lb.main: Still creating..." not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "aws_lb.main: Still creating... [0s elapsed]" in out.getvalue()
    p.close()
    assert p._thread is not None and not p._thread.is_alive()


def test_on_a_terminal_the_live_status_time_advances() -> None:
    con, _ = _console(terminal=True)
    clock = Clock()
    p = Progress(con, interval=10, clock=clock, ticker=False)
    updates: list[str] = []
    p.status.update = lambda text: updates.append(text)
    p(Event("start", "aws_lb.main", "create"))
    clock.now += 3
    p.tick()
    assert updates[-2:] == ["Still working on aws_lb.main (0s)", "Still working on aws_lb.main (3s)"]
    p.close()
