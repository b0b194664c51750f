"""What every state backend offers (read, write, lock, force-unlock), and the checks they share.

A backend keeps one cluster's state document. ``write`` is a compare-and-swap: it writes only
over exactly the state (lineage and serial) the backend last read or wrote, and only a higher
serial of the same lineage. Anything else is a sign of two people working from different copies,
and is refused (naming both serials) rather than silently overwriting or merging.
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
    """Refuse to replace ``stored`` by ``new`` when that would lose state: another lineage, or a
    serial that is not higher than the stored one (an equal serial is another run's edit)."""
    if stored is None:
        return
    if stored.lineage != new.lineage:
        raise StateError(
            f"{where}: holds state of lineage {stored.lineage}, not {new.lineage}: it belongs to "
            "another deployment of this cluster name. Nothing was written; check the spec's state "
            "settings (or move that state away) and run again."
        )
    if new.serial <= stored.serial:
        raise StateError(
            f"{where}: the stored state is at serial {stored.serial}, "
            f"{'newer than' if new.serial < stored.serial else 'the same as'} this run's "
            f"{new.serial}: someone else changed the cluster meanwhile. Nothing was written; run "
            "`byoc plan` again."
        )


def conflict_message(where: str, stored: State | None, seen: tuple[str, int] | None) -> str:
    """The refusal of a write whose base changed: the stored state is not the one this run read
    (or last wrote). Names both serials; the writer never merges."""
    if stored is None:
        now = "has no state any more"
    elif seen is not None and stored.lineage != seen[0]:
        now = f"holds serial {stored.serial} of another lineage ({stored.lineage})"
    else:
        now = f"is at serial {stored.serial}"
    if seen is None:
        base = "this run read that there was no state"
    else:
        base = f"this run read serial {seen[1]}" + (
            f" of lineage {seen[0]}" if stored is None or stored.lineage != seen[0] else "")
    return (
        f"the state at {where} {now} but {base}: someone changed it meanwhile (another byoc run "
        "after a forced unlock, or an edit by hand). Nothing was written; run `byoc plan` again "
        "(what this run already did in AWS is found again by its tags)."
    )
