"""SIGINT and SIGTERM while the executor runs (apply, destroy, scale, restore), handled as Terraform
does: the first asks the executor to stop starting work — what is in flight finishes and is recorded
in the state, the lock is released, the command exits 1; a second one exits at once, naming the
operations it abandons, but never in the middle of a state write (it waits for ``STATE_WRITE``).

The handlers never raise, and write with ``os.write`` (a handler that printed through Python's
buffered streams could land inside another print of the same stream)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

FIRST = ("\nInterrupt received.\nPlease wait for byoc to exit or data loss may occur.\n"
         "Gracefully shutting down...\n")
SECOND = "\nTwo interrupts received. Exiting immediately. Note that data loss may have occurred.\n"
#: what the command prints at the end of a graceful stop (the runbook promises it)
DONE = "Interrupted: work in flight finished and the state was saved."
#: how long an immediate exit waits for a state write in progress to finish
WRITE_WAIT = 60.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """A context manager that installs the handlers (in the main thread; elsewhere it does nothing).

    ``event`` is set by the first signal (pass it to ``Engine.apply(cancel=...)``); ``inflight``
    names what runs now, for the second signal's message; ``note`` is added to that message."""

    def __init__(
        self,
        inflight: Callable[[], list[str]],
        note: str = "",
        *,
        exit: Callable[[int], Any] = os._exit,
        write_lock: Any = None,
    ) -> None:
        from byoc.executor import STATE_WRITE

        self.event = threading.Event()
        self.count = 0
        self._inflight = inflight
        self._note = note
        self._exit = exit
        self._write_lock = write_lock if write_lock is not None else STATE_WRITE
        self._previous: dict[int, Any] = {}

    @property
    def received(self) -> bool:
        return self.event.is_set()

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The signal handler: the first signal cancels, the second exits (after any state write)."""
        self.count += 1
        if self.count == 1:
            self.event.set()
            _say(FIRST)
            return
        if self.count > 2:  # already on the way out
            return
        abandoned = self._inflight()
        what = (f"Abandoned in flight: {', '.join(abandoned)}. They may exist in AWS without being in "
                "the state; the next run finds them by their tags and adopts them.\n"
                if abandoned else "Nothing was in flight.\n")
        _say(SECOND + what + (self._note + "\n" if self._note else ""))
        threading.Thread(target=self._exit_after_write, name="byoc-exit", daemon=True).start()

    def _exit_after_write(self) -> None:
        """Exit as soon as no state write is in progress (holding the write lock: none starts)."""
        self._write_lock.acquire(timeout=WRITE_WAIT)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._exit(1)


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, text.encode())
