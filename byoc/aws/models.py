"""The SDK's data files (service models, endpoint rules, paginators, waiters): read once per process
for every session byoc makes, and kept between runs in a cache in the user's cache directory.

botocore parses a service's model JSON (gzipped, into ordered dicts) every time a process makes its
first client for the service: about 0.1 s for EC2 alone, on every `byoc plan`. Here one loader per
data path serves every session of the process (``session_with_shared_models``), and its file
loader keeps what it parsed in ``$XDG_CACHE_HOME/byoc/sdk-models`` (``~/.cache/byoc/sdk-models``)
as a pickle that loads in about a third of the time. A cached copy is used only when it was made
from the very same data file — botocore's version, the file's path, size and modification time and
the Python version all go into its key, which the entry repeats inside — by this user, in a
directory only this user can write; anything else (stale, unreadable, truncated, foreign) is
ignored and the data file is parsed as before. Entries are written atomically (a temporary, then
one rename). ``BYOC_NO_CACHE=1`` turns the disk cache off.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import pickle
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from botocore.loaders import JSONFileLoader, Loader, instance_cache  # imported with the first client

#: the cache's subdirectory of the user's cache directory (``$XDG_CACHE_HOME/byoc``)
CACHE_SUBDIR = "sdk-models"
#: set (to anything but "" or "0") to read every data file afresh and write no cache
NO_CACHE_ENV = "BYOC_NO_CACHE"
#: bump when the layout of an entry changes
FORMAT = 1

_LOADERS: dict[str | None, Any] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path | None:
    """Where the SDK's parsed data files are kept, or None when the cache is off."""
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "byoc" / CACHE_SUBDIR


def session_with_shared_models(session: Any) -> Any:
    """``session`` (a botocore session) loading its data through the process's one loader for its
    data path (``AWS_DATA_PATH``), whose file loader uses the disk cache."""
    data_path = session.get_config_variable("data_path")
    with _LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            paths = None
            if data_path is not None:  # as botocore's create_loader reads AWS_DATA_PATH
                paths = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
            loader = CachingLoader(extra_search_paths=paths, file_loader=CachingFileLoader(cache_dir()))
            _LOADERS[data_path] = loader
    session.register_component("data_loader", loader)
    return session


class CachingFileLoader(JSONFileLoader):  # type: ignore[misc]
    """botocore's JSON file loader, with a disk cache of what it parsed (see the module's doc)."""

    def __init__(self, directory: Path | None) -> None:
        super().__init__()
        self.directory = directory
        self._usable: bool | None = None

    def load_file(self, file_path: str) -> Any:
        """What botocore's ``load_file`` returns for ``file_path`` (the path without ``.json`` /
        ``.json.gz``): the first of those files that exists, parsed; None when neither does."""
        from botocore.loaders import _JSON_OPEN_METHODS

        for ext, open_method in _JSON_OPEN_METHODS.items():
            full_path = file_path + ext
            try:
                st = os.stat(full_path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            key = self._key(full_path, st)
            data = self._read(key)
            if data is None:
                data = self._load_file(full_path, open_method)
                if data is None:
                    continue
                self._write(key, data)
            # kept for the life of the process (the loader caches it): out of the collector's
            # sight, whose full passes would otherwise walk every one of its objects again and again
            gc.freeze()
            return data
        return None

    @staticmethod
    def _key(full_path: str, st: os.stat_result) -> str:
        import botocore

        return "\0".join((str(FORMAT), botocore.__version__, sys.version, os.path.abspath(full_path),
                          str(st.st_size), str(st.st_mtime_ns)))

    def _entry(self, key: str) -> Path | None:
        if self.directory is None or not self._dir_ok():
            return None
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + ".pickle")

    def _dir_ok(self) -> bool:
        """The cache directory exists (made if not), belongs to this user, and nobody else may
        write in it: only then is what it holds read."""
        if self._usable is None:
            self._usable = False
            assert self.directory is not None
            with contextlib.suppress(OSError):
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                st = os.stat(self.directory)
                self._usable = (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
                                and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
        return self._usable

    def _read(self, key: str) -> Any:
        entry = self._entry(key)
        if entry is None:
            return None
        try:
            with open(entry, "rb") as f:
                if os.fstat(f.fileno()).st_uid != os.getuid():
                    return None
                stored_key, data = _unpickle(f)
        except Exception:  # absent, truncated, made by another version: parse the data file instead
            return None
        return data if stored_key == key else None

    def _write(self, key: str, data: Any) -> None:
        entry = self._entry(key)
        if entry is None:
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=entry.parent)
            with os.fdopen(fd, "wb") as f:
                pickle.dump((key, data), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, entry)
            tmp = None
        except Exception:  # a cache that cannot be written is no cache: nothing else changes
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _unpickle(f: Any) -> Any:
    """``pickle.load(f)`` — our own file, in our own directory — with the garbage collector paused:
    the tens of thousands of containers a model holds would otherwise set off its full passes."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return pickle.load(f)
    finally:
        if paused:
            gc.enable()


class CachingLoader(Loader):  # type: ignore[misc]
    """botocore's loader, whose list of the services it knows (about 900 directory reads, made
    for every process) comes from the disk cache when botocore's own data is all it searches."""

    file_loader: CachingFileLoader

    @instance_cache  # type: ignore[untyped-decorator]
    def list_available_services(self, type_name: str) -> list[str]:
        found = [p for p in self.search_paths if os.path.isdir(p)]
        if found != [self.BUILTIN_DATA_PATH]:  # AWS_DATA_PATH or ~/.aws/models: botocore's walk
            return super().list_available_services(type_name)  # type: ignore[no-any-return]
        try:
            st = os.stat(self.BUILTIN_DATA_PATH)
        except OSError:
            return super().list_available_services(type_name)  # type: ignore[no-any-return]
        key = CachingFileLoader._key(os.path.join(self.BUILTIN_DATA_PATH, f"*/*/{type_name}"), st)
        services = self.file_loader._read(key)
        if not isinstance(services, list):
            services = super().list_available_services(type_name)
            self.file_loader._write(key, services)
        return list(services)
