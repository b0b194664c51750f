"""Terminal output: colours that respect NO_COLOR and TTYs, and the progress display of apply."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.text import Text

_STYLE = {"+": "green", "~": "yellow", "-/+": "magenta", "-": "red", "!": "red", "?": "yellow"}


def console(stderr: bool = False, no_color: bool = False) -> Console:
    color = not no_color and "NO_COLOR" not in os.environ
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
}


class Progress:
    """Renders executor events: a line per resource as it starts and finishes, with elapsed time.

    On a terminal a live status line shows what is in flight; otherwise plain lines only.
    """

    def __init__(self, con: Console) -> None:
        self.con = con
        self.inflight: dict[str, float] = {}
        self.status: Any = None
        if con.is_terminal:
            self.status = con.status("", spinner="dots")
            self.status.start()

    def __call__(self, event: Any) -> None:
        start, finish = _VERBS.get(event.action, ("Working...", "Complete"))
        if event.kind == "start":
            self.inflight[event.address] = time.monotonic()
            self.con.print(f"{event.address}: {start}")
        elif event.kind == "done":
            self.inflight.pop(event.address, None)
            ident = f" [id={event.aws_id}]" if event.aws_id else ""
            self.con.print(f"{event.address}: {finish} after {_dur(event.elapsed)}{ident}")
        elif event.kind == "failed":
            self.inflight.pop(event.address, None)
            self.con.print(Text(f"{event.address}: failed after {_dur(event.elapsed)}", style="red"))
        elif event.kind == "skipped":
            self.con.print(Text(f"{event.address}: {event.message}", style="yellow"))
        self._refresh()

    def in_flight(self) -> list[str]:
        """The addresses of the operations running now (safe to call from a signal handler)."""
        return list(self.inflight)

    def _refresh(self) -> None:
        if self.status is None:
            return
        if self.inflight:
            now = time.monotonic()
            names = ", ".join(f"{a} ({_dur(now - t)})" for a, t in list(self.inflight.items())[:3])
            more = len(self.inflight) - 3
            self.status.update(f"Still working on {names}" + (f" and {more} more" if more > 0 else ""))
        else:
            self.status.update("")

    def close(self) -> None:
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
