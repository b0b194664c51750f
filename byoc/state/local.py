"""The local state backend: one JSON file per cluster, written atomically, guarded by flock.

The lock is an OS-level ``flock`` on ``<cluster>.lock``: the kernel releases it when the holder
exits, even on SIGKILL, so a crashed run never blocks the next. The lock file also records who
holds it (pid, host, operation, time) so a second run can name the holder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from byoc.errors import LockError, StateError
from byoc.state.base import LockInfo, check_successor, conflict_message
from byoc.state.model import State

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
        #: the last state this backend wrote, and an open descriptor of the file it wrote it to:
        #: while the path still names that file (same inode, which cannot be reused while the
        #: descriptor is open; same size and mtime), the next write need not read it again
        self._written: tuple[IO[bytes], State] | None = None
        #: (lineage, serial) this backend last read or wrote (None: it read that there was no
        #: state); a write is only made over exactly that (compare-and-swap)
        self._seen: tuple[str, int] | None = None
        self._has_seen = False
        #: each resource's text as last written (see State.to_json)
        self._texts: dict[int, tuple[object, bytes]] = {}

    def describe(self) -> str:
        return str(self.path)

    def __del__(self) -> None:
        if getattr(self, "_written", None) is not None:
            self._forget_written()

    # -- reading and writing -------------------------------------------------------------
    def read(self) -> State | None:
        """The stored state, or None when there is none yet. Refuses to report "none" while a
        backup or a stray temporary of an interrupted write holds a state (see ``leftovers``)."""
        state = self._read_file(self.path)
        if state is None:
            self._check_no_leftovers()
        self._seen, self._has_seen = (state.lineage, state.serial) if state else None, True
        return state

    def _read_file(self, path: Path) -> State | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise StateError(
                f"{path}: is a directory, not a state file; move it away (or set state.path in the "
                "spec to another directory) and run again"
            ) from None
        except NotADirectoryError:
            raise StateError(self._not_a_directory()) from None
        except OSError as exc:
            raise StateError(f"{path}: cannot read the state file: {exc.strerror}; check the file's "
                             "permissions") from exc
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StateError(
                f"{path}: state file is not valid JSON ({exc}); it was left untouched.{self._kept()}"
            ) from exc
        try:
            state = State.from_dict(data, source=str(path))
        except StateError as exc:
            raise StateError(f"{exc}{self._kept()}") from exc
        if state.cluster != self.cluster:
            raise StateError(f"{path}: holds the state of cluster {state.cluster!r}, not {self.cluster!r}")
        return state

    def _kept(self) -> str:
        """What the messages about a bad state file add: the backup, only when there is one."""
        if self.backup_path.is_file():
            return (f" The previous copy is kept at {self.backup_path} (`byoc state restore-backup SPEC "
                    "--force` puts it back).")
        return " There is no backup copy beside it."

    def _not_a_directory(self) -> str:
        return (f"{self.directory}: the state directory (state.path) is not a directory (a file "
                "is in the way); point state.path at a directory, or move that file away")

    def leftovers(self) -> list[tuple[Path, State]]:
        """States an interrupted write or a lost file left behind, newest serial first: the
        backup and stray temporaries (``.<cluster>.*.tmp``) that hold a valid state of this
        cluster (unreadable ones are ignored)."""
        found: list[tuple[Path, State]] = []
        candidates = [self.backup_path]
        with contextlib.suppress(OSError):
            candidates += sorted(self.directory.glob(f".{self.cluster}.*.tmp"))
        for path in candidates:
            try:
                state = self._read_file(path)
            except StateError:
                continue
            if state is not None:
                found.append((path, state))
        found.sort(key=lambda x: x[1].serial, reverse=True)
        return found

    def _check_no_leftovers(self) -> None:
        found = self.leftovers()
        if not found:
            return
        path, state = found[0]
        raise StateError(
            f"{self.path}: there is no state file, but {path} holds the state of cluster "
            f"{self.cluster} (serial {state.serial}, lineage {state.lineage}): the state file was "
            "lost (an interrupted write, or deleted by hand). byoc will not start a new state over "
            "it. Restore it with `byoc state restore-backup SPEC` (or copy that file to "
            f"{self.path} by hand), then run again."
        )

    def write(self, state: State) -> None:
        """Write atomically: the previous file hard-linked (or copied) to .backup, then the new
        one written to a temporary, fsynced and renamed over the state in ONE rename, so that at
        every instant the old or the new state is in place. A write is made only over exactly
        the state this backend last read or wrote (compare-and-swap); otherwise StateError."""
        stored = self._stored()
        self._check_over(stored, state)
        fd = self._put(state.to_bytes(self._texts), suffix=".tmp", backup=stored is not None)
        self._forget_written()
        self._written = (os.fdopen(fd, "rb", buffering=0), state)  # closed when replaced or collected
        self._seen, self._has_seen = (state.lineage, state.serial), True

    def _put(self, data: bytes, *, suffix: str, backup: bool) -> int:
        """``data`` in place of the state file in ONE rename: written to a temporary, fsynced,
        renamed over the state (the current file kept as .backup first when ``backup``), the
        directory fsynced. Returns the new file's open descriptor (the caller keeps or closes it);
        on every failure, Ctrl-C and SystemExit included, the temporary is removed."""
        self._mkdir()
        tmp: str | None = None
        fd = -1
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.cluster}.", suffix=suffix, dir=self.directory)
            os.fchmod(fd, 0o600)
            _write_all(fd, data)
            os.fsync(fd)
            if backup:
                self._keep_backup()
            os.replace(tmp, self.path)
            tmp = None
            self._fsync_dir()
        except BaseException as exc:
            self._forget_written()
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if isinstance(exc, OSError):
                raise StateError(self._cannot_write(exc)) from exc
            raise
        return fd

    def _check_over(self, stored: State | None, new: State) -> None:
        """Compare-and-swap: the stored state must be exactly the one this backend last saw."""
        if self._has_seen:
            now = (stored.lineage, stored.serial) if stored else None
            if now != self._seen:
                raise StateError(conflict_message(str(self.path), stored, self._seen))
        check_successor(stored, new, str(self.path))

    def _keep_backup(self) -> None:
        """The current file as .backup, replaced in one rename (a hard link, or a copy where the
        file system has none); the state file itself stays in place."""
        fd, tmp = tempfile.mkstemp(prefix=f".{self.cluster}.", suffix=".backup.tmp", dir=self.directory)
        try:
            os.close(fd)
            try:
                os.unlink(tmp)
                os.link(self.path, tmp)
            except OSError:
                shutil.copyfile(self.path, tmp)
                os.chmod(tmp, 0o600)
            os.replace(tmp, self.backup_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _cannot_write(self, exc: OSError) -> str:
        if isinstance(exc, NotADirectoryError) or (self.directory.exists() and not self.directory.is_dir()):
            return self._not_a_directory()
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (f"{self.path}: cannot write the state file: {exc.strerror}. Make the directory "
                    f"{self.directory} writable for this user (check its permissions, a read-only "
                    "mount, or `lsattr` for the immutable flag), or set state.path to a writable "
                    "directory; nothing was written")
        if exc.errno == errno.ENOSPC:
            return (f"{self.path}: cannot write the state file: the disk is full; free space on "
                    f"the file system of {self.directory} and run again; the previous state is kept")
        return f"{self.path}: cannot write the state file: {exc.strerror or exc}; the previous state is kept"

    def _mkdir(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StateError(self._not_a_directory()) from None
        except NotADirectoryError:
            raise StateError(self._not_a_directory()) from None
        except OSError as exc:
            raise StateError(
                f"{self.directory}: cannot create the state directory: {exc.strerror}; create it "
                "(writable for this user) or set state.path to a writable directory"
            ) from exc

    def _forget_written(self) -> None:
        if self._written is not None:
            with contextlib.suppress(OSError):
                self._written[0].close()
            self._written = None

    def _stored(self) -> State | None:
        """What the file holds: the state this backend last wrote while the path still names the
        very file it wrote, else what a fresh read finds."""
        if self._written is not None:
            f, state = self._written
            if _identity(os.fstat(f.fileno())) == _file_identity(self.path):
                return state
        seen, has_seen = self._seen, self._has_seen
        try:
            return self._read_file(self.path)
        finally:
            self._seen, self._has_seen = seen, has_seen

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def restore_backup(self, force: bool = False) -> tuple[Path, State]:
        """Put the backup (or the newest valid stray temporary) in place of the state file; the
        caller holds the lock. Refused when a state file exists, unless ``force``."""
        try:
            current = self._read_file(self.path)
        except StateError:
            current = None
            if not force:
                raise
        if self.path.exists() and not force:
            assert current is not None
            raise StateError(
                f"{self.path}: a state file exists (serial {current.serial}, lineage {current.lineage}); "
                "nothing was restored. Pass --force to replace it by the backup."
            )
        found = self.leftovers()
        if not found:
            raise StateError(f"{self.path}: there is no backup ({self.backup_path}) and no temporary "
                             "of an interrupted write to restore from")
        source, state = found[0]
        os.close(self._put(source.read_bytes(), suffix=".restore.tmp", backup=False))
        self._forget_written()
        self._seen, self._has_seen = (state.lineage, state.serial), True
        return source, state

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the cluster's lock for the duration. A lock held by another process is waited for
        up to ``timeout`` seconds (polling), then refused naming the holder."""
        self._mkdir()
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = open(self.lock_path, "a+", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise StateError(
                    f"{self.lock_path}: cannot open the lock file: {exc.strerror}. Make the directory "
                    f"{self.directory} writable for this user, or set state.path to a writable directory"
                ) from exc
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
        self._clear_strays()
        try:
            yield info
        finally:
            self._held = None
            with contextlib.suppress(OSError):
                f.seek(0)
                f.truncate()
            f.close()

    def _clear_strays(self) -> None:
        """Under the lock nobody else writes: temporaries of an interrupted write are removed
        when the state file is in place (without it they are evidence, see ``read``)."""
        if not self.path.is_file():
            return
        with contextlib.suppress(OSError):
            for stray in self.directory.glob(f".{self.cluster}.*.tmp"):
                with contextlib.suppress(OSError):
                    stray.unlink()

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


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        return _identity(path.stat())
    except OSError:
        return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
