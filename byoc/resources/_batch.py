"""Many waiters, one call: a ``Batcher`` answers the callers that ask about items of one kind at
the same time (thirty nodes' volumes being waited on, their instances, their targets in one group)
with one AWS call for all of their ids.

A caller's ids go out in a call that starts after it asked (never an answer read before its
request: read-after-write holds). While only a few callers wait on a batcher, each one calls at
once (a small cluster waits no longer than before); past that, callers arriving while a call is
in flight are gathered, and one of them sends the next call for all of them when it lands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from byoc.aws.context import AwsContext

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: while at most this many callers wait on one batcher, each calls at once; more, and they share
#: one call at a time (a burst of thirty nodes: two or three calls instead of thirty)
FEW = 3

#: what a batch call answers per id: the item, or the error of that id alone (absent: not found)
Answers = Mapping[K, "V | BaseException"]


class _Ticket(Generic[K, V]):
    """One caller's request: its ids, and once answered, what was found or the error."""

    __slots__ = ("done", "error", "found", "keys", "taken")

    def __init__(self, keys: list[K]) -> None:
        self.keys = keys
        self.taken = False
        self.done = False
        self.found: dict[K, V | BaseException] = {}
        self.error: BaseException | None = None


class Batcher(Generic[K, V]):
    """``get``/``get_many`` for ids of one kind, answered by ``call(ids)`` on at most ``size`` ids
    at a time; ``call`` answers {id: item} for the ids it found (or {id: error} for an id that
    failed alone). An error raised by ``call`` is every caller's of that batch."""

    def __init__(
        self, call: Callable[[list[K]], Answers[K, V]], *, size: int, few: int | None = None
    ) -> None:
        self._call = call
        self.size = size
        self.few = FEW if few is None else few
        self._cv = threading.Condition()
        self._pending: list[_Ticket[K, V]] = []
        self._flying = 0  # calls in flight
        self._riding = 0  # callers whose ids they carry
        #: how many batches were sent, and for how many ids in all (for tests and benchmarks)
        self.batches = 0
        self.asked = 0

    def get(self, key: K) -> V | None:
        """The item with id ``key``; None when the call did not find it."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The items found among ``keys`` (the missing ones left out); the error of one id alone
        is raised."""
        ticket: _Ticket[K, V] = _Ticket(list(dict.fromkeys(keys)))
        if not ticket.keys:
            return {}
        with self._cv:
            self._pending.append(ticket)
            while not ticket.done:
                if not ticket.taken and (
                    self._flying == 0 or self._riding + len(self._pending) <= self.few
                ):
                    self._fly()
                else:
                    self._cv.wait()
        if ticket.error is not None:
            raise ticket.error
        out: dict[K, V] = {}
        for key, item in ticket.found.items():
            if isinstance(item, BaseException):
                raise item
            out[key] = item
        return out

    def _fly(self) -> None:
        """Send one call for every pending ticket (the condition's lock held on entry and exit,
        released while the call runs)."""
        batch, self._pending = self._pending, []
        for t in batch:
            t.taken = True
        self._flying += 1
        self._riding += len(batch)
        keys = list(dict.fromkeys(k for t in batch for k in t.keys))
        found: dict[K, V | BaseException] = {}
        error: BaseException | None = None
        self._cv.release()
        try:
            for i in range(0, len(keys), self.size):
                found.update(self._call(keys[i : i + self.size]))
        except BaseException as exc:  # every caller of the batch gets it, re-raised in its thread
            error = exc
        finally:
            self._cv.acquire()
        self.batches += 1
        self.asked += len(keys)
        self._flying -= 1
        self._riding -= len(batch)
        for t in batch:
            t.found = {k: found[k] for k in t.keys if k in found}
            t.error, t.done = error, True
        self._cv.notify_all()


def batcher(ctx: AwsContext, name: str, make: Callable[[], Batcher[K, V]]) -> Batcher[K, V]:
    """The context's batcher called ``name`` (made once per context)."""
    return ctx.once("batch", name, make)
