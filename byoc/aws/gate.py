"""``CallGate``: at most N AWS calls in flight across every client that carries its hooks.

A permit is taken before each HTTP attempt is sent and given back when its answer is in (before
any retry's backoff sleep), or when the call ends however it ends: what waits — a poll's sleep, a
caller waiting for another's batched read, a retry's backoff — holds none. When calls wait for a
permit, the one ranked first goes first (``ranked``: an apply ranks each operation's calls by the
road still ahead of it); equal ranks go in the order they came.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

Hook = tuple[str, Callable[..., Any]]

#: the rank of the calls the current thread makes (lower goes first); inherited by the threads of
#: ``AwsContext.together``, which run in a copy of their caller's context
RANK: contextvars.ContextVar[float] = contextvars.ContextVar("byoc_call_rank", default=0.0)


@contextlib.contextmanager
def ranked(rank: float) -> Iterator[None]:
    """Calls made inside (in this thread and the threads it hands work to) wait with ``rank``."""
    token = RANK.set(rank)
    try:
        yield
    finally:
        RANK.reset(token)


def gate_hooks(acquire: Callable[..., Any], release: Callable[..., Any]) -> list[Hook]:
    """Where a gate's permit is taken and given back: before each attempt is sent (after the SDK's
    own rate limiter, when registered after it), and when its answer is in or the call ends."""
    return [("before-send", acquire), ("needs-retry", release),
            ("after-call", release), ("after-call-error", release)]


class CallGate:
    """At most ``limit`` AWS calls in flight across every client that carries ``hooks()``."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._free = self.limit
        #: (rank, arrival, the waiting thread's event): the first is handed the next permit
        self._waiting: list[tuple[float, int, threading.Event]] = []
        self._arrival = itertools.count()
        self._local = threading.local()
        self.in_flight = 0
        #: the most calls that were ever in flight at once
        self.peak = 0

    def hooks(self) -> list[Hook]:
        """The botocore event hooks to register on every client the gate covers."""
        return gate_hooks(self.acquire, self.release)

    def acquire(self, **kwargs: Any) -> None:
        """Take a permit for this thread's next attempt, waiting for one if none is free."""
        local = self._local
        if getattr(local, "held", False):
            return  # an attempt whose answer never came back through needs-retry: its permit is reused
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                self._taken()
                local.held = True
                return
            event = getattr(local, "event", None)
            if event is None:
                event = local.event = threading.Event()
            event.clear()
            entry = (RANK.get(), next(self._arrival), event)
            heapq.heappush(self._waiting, entry)
        try:
            event.wait()  # the permit is handed over by ``release`` (counted there)
        except BaseException:  # an interrupt while waiting: no permit kept, none lost
            with self._lock:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                    raise
            local.held = True  # handed over meanwhile: given back, to the next waiter
            self.release()
            raise
        local.held = True

    def release(self, **kwargs: Any) -> None:
        """Give back this thread's permit (if it holds one): to the first waiter, else to the pool."""
        local = self._local
        if not getattr(local, "held", False):
            return
        local.held = False
        with self._lock:
            self.in_flight -= 1
            if self._waiting:
                _, _, event = heapq.heappop(self._waiting)
                self._taken()
                event.set()
            else:
                self._free += 1

    def _taken(self) -> None:
        """Count a permit handed out (the lock held)."""
        self.in_flight += 1
        if self.in_flight > self.peak:
            self.peak = self.in_flight
