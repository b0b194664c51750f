"""The local state backend: one JSON file per cluster, written atomically, guarded by flock.

The lock is an OS-level ``flock`` on ``<cluster>.lock``: the kernel releases it when the holder
exits, even on SIGKILL, so a crashed run never blocks the next. The lock file also records who
holds it (pid, host, operation, time) so a second run can name the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from byoc.errors import LockError, StateError
from byoc.state.base import LockInfo, check_successor
from byoc.state.model import ResourceState, State

#: how often a held lock is tried again while ``--lock-timeout`` lasts (seconds)
LOCK_POLL = 0.25


class LocalBackend:
    """State in ``<directory>/<cluster>.json`` with ``.backup`` and ``.lock`` beside it."""

    kind = "local"

    def __init__(self, directory: str | Path, cluster: str) -> None:
        self.directory = Path(directory)
        self.cluster = cluster
        self.path = self.directory / f"{cluster}.json"
        self.backup_path = self.directory / f"{cluster}.json.backup"
        self.lock_path = self.directory / f"{cluster}.lock"
        self._held: IO[str] | None = None
        #: the last state this backend wrote, with the file's (inode, size, mtime) right after:
        #: while the file is unchanged, the next write need not read and parse it again
        self._written: tuple[tuple[int, int, int], State] | None = None
        #: each resource's text as last written (see State.to_json)
        self._texts: dict[int, tuple[ResourceState, str]] = {}

    def describe(self) -> str:
        return str(self.path)

    # -- reading and writing -------------------------------------------------------------
    def read(self) -> State | None:
        """The stored state, or None when there is none yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StateError(
                f"{self.path}: state file is not valid JSON ({exc}); it was left untouched. "
                f"A previous copy may be at {self.backup_path}."
            ) from exc
        state = State.from_dict(data, source=str(self.path))
        if state.cluster != self.cluster:
            raise StateError(
                f"{self.path}: holds the state of cluster {state.cluster!r}, not {self.cluster!r}"
            )
        return state

    def write(self, state: State) -> None:
        """Write atomically (temp file, fsync, rename), keeping the previous copy as .backup.
        Refuses a state of another lineage or with a lower serial than the stored one."""
        check_successor(self._stored(), state, str(self.path))
        self.directory.mkdir(parents=True, exist_ok=True)
        text = state.to_json(self._texts)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.cluster}.", suffix=".tmp", dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            if self.path.exists():
                with contextlib.suppress(FileNotFoundError):
                    os.replace(self.path, self.backup_path)
            os.replace(tmp, self.path)
            self._fsync_dir()
        except OSError as exc:
            self._written = None
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StateError(f"{self.path}: cannot write the state file: {exc.strerror}") from exc
        stat = self._stat()
        self._written = (stat, state) if stat else None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _stored(self) -> State | None:
        """What the file holds: the state this backend last wrote while the file is still that
        one (every write replaces the file, so another writer changes its inode), else read."""
        if self._written is not None and self._written[0] == self._stat():
            return self._written[1]
        return self.read()

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the cluster's lock for the duration. A lock held by another process is waited for
        up to ``timeout`` seconds (polling), then refused naming the holder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            f = open(self.lock_path, "a+", encoding="utf-8")  # noqa: SIM115
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.holder()
                f.close()
                if time.monotonic() < deadline:
                    time.sleep(min(LOCK_POLL, max(0.0, deadline - time.monotonic())))
                    continue
                who = holder.describe() if holder else "another process"
                waited = f" (waited {timeout:g}s)" if timeout else ""
                raise LockError(
                    f"the state of cluster {self.cluster!r} is locked by {who}{waited}. Wait for it to "
                    f"finish (or pass --lock-timeout to wait); if it is stuck, stop that process (its "
                    "lock is released when it exits)."
                ) from None
            # The file may have been removed (force-unlock) between open and flock: retry.
            try:
                same = os.fstat(f.fileno()).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        info = LockInfo.mine(operation)
        os.chmod(self.lock_path, 0o600)
        f.seek(0)
        f.truncate()
        f.write(info.to_json())
        f.flush()
        self._held = f
        try:
            yield info
        finally:
            self._held = None
            with contextlib.suppress(OSError):
                f.seek(0)
                f.truncate()
            f.close()

    def holder(self) -> LockInfo | None:
        """Who holds the lock right now, if anyone does."""
        try:
            with open(self.lock_path, encoding="utf-8") as f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return LockInfo.parse(f.read()) or LockInfo(0, "unknown", "unknown", "unknown")
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                return None
        except FileNotFoundError:
            return None

    def force_unlock(self) -> LockInfo | None:
        """Remove the lock file so the next run can lock; returns who held it."""
        holder = self.holder()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)
        return holder

