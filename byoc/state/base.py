"""What every state backend offers (read, write, lock, force-unlock), and the checks they share.

A backend keeps one cluster's state document. ``write`` refuses to go backwards: a document of
another lineage, or with a lower serial than the stored one, is a sign of two people working
from different copies, and is refused rather than silently overwriting newer state.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from byoc.errors import StateError
from byoc.state.model import State


@dataclass(frozen=True)
class LockInfo:
    """Who holds a state lock."""

    pid: int
    host: str
    operation: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.operation}, since {self.since})"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def mine(cls, operation: str) -> LockInfo:
        """The lock record of this process."""
        return cls(pid=os.getpid(), host=socket.gethostname(), operation=operation,
                   since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @classmethod
    def parse(cls, text: str | bytes) -> LockInfo | None:
        try:
            d: Any = json.loads(text)
            return cls(int(d["pid"]), str(d["host"]), str(d["operation"]), str(d["since"]))
        except (ValueError, KeyError, TypeError):
            return None

    def gone(self) -> bool:
        """True when the holder ran on this host and is no longer running."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


class Backend(Protocol):
    """A store of one cluster's state. ``lock`` waits up to ``timeout`` seconds for a held lock
    (by default not at all), then fails with a LockError naming the holder."""

    kind: str
    cluster: str

    def describe(self) -> str: ...

    def read(self) -> State | None: ...

    def write(self, state: State) -> None: ...

    def lock(self, operation: str, timeout: float = 0.0) -> AbstractContextManager[LockInfo]: ...

    def holder(self) -> LockInfo | None: ...

    def force_unlock(self) -> LockInfo | None: ...


def check_successor(stored: State | None, new: State, where: str) -> None:
    """Refuse to replace ``stored`` by ``new`` when that would lose state."""
    if stored is None:
        return
    if stored.lineage != new.lineage:
        raise StateError(
            f"{where}: holds state of lineage {stored.lineage}, not {new.lineage}: it belongs to "
            "another deployment of this cluster name. Nothing was written; check the spec's state "
            "settings (or move that state away) and run again."
        )
    if new.serial < stored.serial:
        raise StateError(
            f"{where}: the stored state is at serial {stored.serial}, newer than this run's "
            f"{new.serial}: someone else changed the cluster meanwhile. Nothing was written; run "
            "`byoc plan` again."
        )
