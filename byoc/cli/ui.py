"""Terminal output: colours that respect NO_COLOR and TTYs, and the progress display of apply."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

_STYLE = {"+": "green", "~": "yellow", "-/+": "magenta", "-": "red", "!": "red", "?": "yellow"}


def console(stderr: bool = False, no_color: bool = False) -> Console:
    color = not no_color and "NO_COLOR" not in os.environ and _COLOR["allowed"]
    return Console(
        stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False,
        no_color=not color, color_system="auto" if color else None,
    )


def print_plan_text(con: Console, text: str) -> None:
    """Print rendered plan text, colouring each line by its action symbol."""
    for line in text.rstrip("\n").split("\n"):
        stripped = line.lstrip()
        style = None
        for sym in ("-/+", "+", "~", "-", "!", "?"):
            if stripped.startswith(sym + " "):
                style = _STYLE[sym]
                break
        if line.startswith("Plan:") or line.startswith("No changes."):
            style = "bold"
        con.print(Text(line, style=style or ""))


def error(con: Console, message: str) -> None:
    con.print(Text("Error: ", style="bold red") + Text(message))


def warning(con: Console, message: str) -> None:
    con.print(Text("Warning: ", style="bold yellow") + Text(message))


_VERBS = {
    "create": ("Creating...", "Creation complete"),
    "update": ("Modifying...", "Modifications complete"),
    "destroy": ("Destroying...", "Destruction complete"),
    "wait-healthy": ("Waiting until healthy in every target group...", "Healthy"),
    "final-snapshot": ("Taking the final snapshot...", "Final snapshot complete"),
    "backup": ("Taking a backup before the upgrade...", "Backup complete"),
}
_STILL = {"create": "Still creating...", "update": "Still modifying...", "destroy": "Still destroying...",
          "wait-healthy": "Still waiting until healthy...", "backup": "Still backing up..."}
#: Terraform's period of "Still creating... [10s elapsed]" lines
STILL_EVERY = 10.0


class Progress:
    """Renders executor events: a line per resource as it starts and finishes, with elapsed time,
    and every ``interval`` seconds a "Still creating... [10s elapsed]" line per resource in flight,
    as Terraform prints them (a daemon ticker thread, stopped by ``close``; with and without a
    terminal). On a terminal a live status line also shows what is in flight, its time advancing.
    ``clock`` and ``ticker=False`` (call ``tick`` yourself) are for tests."""

    def __init__(
        self,
        con: Console,
        *,
        interval: float = STILL_EVERY,
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = True,
    ) -> None:
        self.con = con
        self.interval = interval
        self.clock = clock
        #: address -> (started, action, when the next "Still ..." line is due)
        self.inflight: dict[str, tuple[float, str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.status: Any = None
        if con.is_terminal:
            self.status = con.status("", spinner="dots")
            self.status.start()
        self._thread: threading.Thread | None = None
        if ticker and interval > 0:
            self._thread = threading.Thread(target=self._tick_loop, name="byoc-progress", daemon=True)
            self._thread.start()

    def __call__(self, event: Any) -> None:
        start, finish = _VERBS.get(event.action, ("Working...", "Complete"))
        with self._lock:
            if event.kind == "start":
                now = self.clock()
                self.inflight[event.address] = (now, event.action, now + self.interval)
                self._line(f"{event.address}: {start}")
            elif event.kind == "done":
                self.inflight.pop(event.address, None)
                ident = f" [id={event.aws_id}]" if event.aws_id else ""
                self._line(f"{event.address}: {finish} after {_dur(event.elapsed)}{ident}")
            elif event.kind == "failed":
                self.inflight.pop(event.address, None)
                self._line(Text(f"{event.address}: failed after {_dur(event.elapsed)}", style="red"))
            elif event.kind == "skipped":
                self._line(Text(f"{event.address}: {event.message}", style="yellow"))
            elif event.kind == "note":
                self._line(f"{event.address}: {event.message}")
            self._refresh()

    def _line(self, line: str | Text) -> None:
        """One line of progress, printed as it is: no markup parsed in it (an address or an AWS
        message may hold brackets) and no highlighting guessed over it; about a third of the
        cost of a plain ``print`` per line (an apply at 30 nodes prints some 600)."""
        self.con.print(line, highlight=False, markup=False)

    def tick(self) -> None:
        """A "Still ..." line for each operation in flight whose next one is due; the live status."""
        with self._lock:
            now = self.clock()
            for address, (started, action, due) in list(self.inflight.items()):
                if now < due:
                    continue
                still = _STILL.get(action, "Still working...")
                self._line(f"{address}: {still} [{_dur(now - started)} elapsed]")
                while due <= now:
                    due += self.interval
                self.inflight[address] = (started, action, due)
            self._refresh()

    def _tick_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.interval)):
            with contextlib.suppress(Exception):  # the display must never end an apply
                self.tick()

    def in_flight(self) -> list[str]:
        """The addresses of the operations running now (safe to call from a signal handler: takes
        no lock)."""
        for _ in range(3):
            with contextlib.suppress(RuntimeError):  # changed size during the copy
                return list(self.inflight)
        return []

    def _refresh(self) -> None:
        if self.status is None:
            return
        if self.inflight:
            now = self.clock()
            names = ", ".join(f"{a} ({_dur(now - t)})" for a, (t, _, _) in list(self.inflight.items())[:3])
            more = len(self.inflight) - 3
            self.status.update(f"Still working on {names}" + (f" and {more} more" if more > 0 else ""))
        else:
            self.status.update("")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.status is not None:
            self.status.stop()


def _dur(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


_MARK = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"), "skipped": ("-", "dim")}


def print_checks(con: Console, checks: Any) -> None:
    """Preflight results: a line per check, and what to do for warnings and failures."""
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        mark, style = _MARK.get(c.status, ("?", ""))
        con.print(Text(f"  {mark} {c.name:<{width}}  ", style=style) + Text(c.message))
        if c.fix and c.status in ("warn", "fail"):
            con.print(Text(f"    {' ' * width}  → {c.fix}", style="dim"))


def enable_logging(verbosity: int) -> None:
    """-v: every AWS call on stderr; -vv: byoc's debug messages too (never SDK bodies)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("byoc")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


_INPUT = {"allowed": True}
_COLOR = {"allowed": True}


def allow_color(allowed: bool) -> None:
    """``-no-color`` given to a command that has no ``--no-color`` option: no colours anywhere."""
    _COLOR["allowed"] = allowed


def allow_input(allowed: bool) -> None:
    """``-input=false``: never ask a question, as when there is no terminal."""
    _INPUT["allowed"] = allowed


def input_disabled() -> bool:
    return not _INPUT["allowed"]


def stdin_is_tty() -> bool:
    if not _INPUT["allowed"]:
        return False
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
