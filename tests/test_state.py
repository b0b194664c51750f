"""The local state store: atomic writes, backups, permissions, refusal of bad files, the lock."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byoc.errors import LockError, StateError
from byoc.state import LocalBackend, ResourceState, State


def make_state() -> State:
    return State.new("c1").with_resource(
        ResourceState("aws_vpc.main", "aws_vpc", "vpc-1", {"cidr_block": "10.0.0.0/16"}, {"arn": "a"})
    ).bumped()


def test_write_read_round_trip_mode_0600_and_backup(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, "c1")
    s1 = make_state()
    b.write(s1)
    assert b.read() == s1
    assert stat.S_IMODE(os.stat(b.path).st_mode) == 0o600
    s2 = s1.bumped()
    b.write(s2)
    assert b.read() == s2
    assert json.loads(b.backup_path.read_text())["serial"] == s1.serial
    assert not list(tmp_path.glob("*.tmp"))


def test_document_format(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, "c1")
    b.write(make_state())
    d = json.loads(b.path.read_text())
    assert set(d) == {"version", "lineage", "serial", "cluster", "resources", "outputs", "facts",
                       "final_snapshots"}
    assert d["resources"][0] == {
        "address": "aws_vpc.main", "kind": "aws_vpc", "id": "vpc-1",
        "props": {"cidr_block": "10.0.0.0/16"}, "attrs": {"arn": "a"}, "depends_on": [],
    }


def test_incremental_text_is_exactly_the_pretty_printed_document(tmp_path: Path) -> None:
    """Each write re-serialises only what changed, yet the file is byte for byte what
    json.dumps(indent=2) prints, through adds, changes, removals and nested values."""
    from byoc.model import UNKNOWN, Ref

    b = LocalBackend(tmp_path, "c1")
    state = State.new("c1")

    def vpc(cidr: str) -> ResourceState:
        return ResourceState("aws_vpc.main", "aws_vpc", "vpc-1", {"cidr": cidr}, {})

    steps = [
        lambda s: s.with_resource(vpc("10.0.0.0/16")),
        lambda s: s.with_resource(ResourceState(
            'aws_subnet.a["x"]', "aws_subnet", "subnet-1",
            {"vpc_id": Ref("aws_vpc.main", "id"), "tags": {"k": "line\nbreak", "e": ""}, "l": [], "d": {}},
            {"arn": UNKNOWN}, ("aws_vpc.main",))),
        lambda s: s.with_resource(vpc("10.1.0.0/16")),
        lambda s: s.with_facts({"ami": "ami-1"}),
        lambda s: s.with_final_snapshot("aws_ebs_volume.d", "vol-1", "snap-1", "2026-01-01T00:00:00Z"),
        lambda s: s.with_outputs({"endpoint": "a", "nodes": ["n0"]}),
        lambda s: s.with_outputs({"endpoint": "b", "nodes": ["n0", "n1"]}),
        lambda s: s.with_facts({"ami": "ami-2"}),
        lambda s: s.with_changes({"aws_vpc.main": vpc("10.2.0.0/16"), 'aws_subnet.a["x"]': None,
                                  "aws_eip.a": ResourceState("aws_eip.a", "aws_eip", "eip-1", {}, {})}),
        lambda s: s.with_changes({}),
        lambda s: s.without("aws_vpc.main"),
        lambda s: s.without('aws_subnet.a["x"]'),
        lambda s: s.with_changes({"aws_eip.a": None}),
    ]
    for step in steps:
        state = step(state).bumped()
        b.write(state)
        assert b.path.read_text() == json.dumps(state.to_dict(), indent=2) + "\n"
        assert b.read() == state


def test_a_state_written_by_someone_else_meanwhile_is_still_checked(tmp_path: Path) -> None:
    """The writer skips re-reading its own last write, but never a file another writer replaced."""
    mine, theirs = LocalBackend(tmp_path, "c1"), LocalBackend(tmp_path, "c1")
    state = make_state()
    mine.write(state)
    theirs.write(state.bumped().bumped())
    with pytest.raises(StateError, match=r"is at serial 3 but this run read serial 1: someone changed it"):
        mine.write(state.bumped())


def test_an_equal_serial_written_meanwhile_is_never_overwritten(tmp_path: Path) -> None:
    """Compare-and-swap: a `state rm` made meanwhile (same next serial) is not silently undone."""
    mine, theirs = LocalBackend(tmp_path, "c1"), LocalBackend(tmp_path, "c1")
    first = make_state()
    mine.write(first)
    base = theirs.read()
    assert base is not None
    theirs.write(base.without("aws_vpc.main").bumped())
    mine_next = first.bumped()
    assert mine_next.serial == base.serial + 1
    with pytest.raises(StateError, match=rf"is at serial {base.serial + 1} but this run read serial "
                       rf"{base.serial}.*Nothing was written"):
        mine.write(mine_next)
    assert LocalBackend(tmp_path, "c1").read() == base.without("aws_vpc.main").bumped()
    # a writer that never read (a blind write) still may not reuse the stored serial
    with pytest.raises(StateError, match="the same as this run's"):
        LocalBackend(tmp_path, "c1").write(mine_next)
    # after reading again, the writer goes on from what is there
    again = mine.read()
    assert again is not None
    mine.write(again.bumped())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a byoc state file"),
        ('{"version": 99, "lineage": "x", "serial": 1, "cluster": "c1"}', "newer than this byoc"),
        ('{"version": 1, "serial": 1, "cluster": "c1"}', "corrupt"),
        ('{"version": 1, "lineage": "x", "serial": 1, "cluster": "other"}', "not 'c1'"),
    ],
)
def test_bad_state_files_are_refused_and_never_overwritten(
    tmp_path: Path, content: str, message: str
) -> None:
    b = LocalBackend(tmp_path, "c1")
    b.path.write_text(content)
    with pytest.raises(StateError, match=message):
        b.read()
    assert b.path.read_text() == content


HOLD = """
import sys, time
from byoc.state import LocalBackend
b = LocalBackend(sys.argv[1], "c1")
with b.lock("apply"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_locker_fails_fast_naming_the_holder(tmp_path: Path) -> None:
    p = _holder(tmp_path)
    try:
        b = LocalBackend(tmp_path, "c1")
        t0 = time.monotonic()
        with pytest.raises(LockError, match=rf"pid {p.pid} on .*\(apply, since"), b.lock("apply"):
            pass
        assert time.monotonic() - t0 < 5
        holder = b.holder()
        assert holder is not None and holder.pid == p.pid
    finally:
        p.kill()
        p.wait()


def test_a_sigkilled_holder_does_not_block_the_next_run(tmp_path: Path) -> None:
    p = _holder(tmp_path)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    b = LocalBackend(tmp_path, "c1")
    assert b.holder() is None
    with b.lock("apply") as info:
        assert info.pid == os.getpid()


def test_force_unlock_lets_the_next_run_lock(tmp_path: Path) -> None:
    p = _holder(tmp_path)
    try:
        b = LocalBackend(tmp_path, "c1")
        assert b.force_unlock() is not None
        with b.lock("apply") as info:
            assert info.operation == "apply"
    finally:
        p.kill()
        p.wait()


def test_a_corrupt_state_names_the_backup_only_when_there_is_one(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, "c1")
    b.path.write_text('{"version": 1, "lineage": "x", "serial": "7", "cluster": "c1"}')
    with pytest.raises(StateError, match="'serial' must be a whole number") as exc:
        b.read()
    assert ".backup" not in str(exc.value) and "There is no backup copy" in str(exc.value)
    b.backup_path.write_text(make_state().to_json())
    with pytest.raises(StateError, match=r"previous copy is kept at .*c1\.json\.backup"):
        b.read()


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


def _valid_document() -> dict[str, object]:
    state = make_state().with_outputs({"vpc_id": "vpc-1"}).with_facts({"ami": "ami-1"})
    state = state.with_final_snapshot("aws_ebs_volume.data[\"0\"]", "vol-1", "snap-1", "2026-01-01T00:00:00Z")
    return json.loads(state.to_json())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from([
    (), ("resources", 0), ("final_snapshots", 0), ("resources", 0, "props"), ("resources", 0, "attrs"),
    ("resources", 0, "depends_on"), ("resources",), ("final_snapshots",)]), key=st.sampled_from([
        "version", "lineage", "serial", "cluster", "resources", "outputs", "facts", "final_snapshots",
        "address", "kind", "id", "props", "attrs", "depends_on", "snapshot_id", "volume_id", "time",
        "$ref", "$join", "$sorted", "$unknown"]), value=_JSON, drop=st.booleans())
def test_fuzzed_state_files_load_or_raise_state_error(
    path: tuple[str | int, ...], key: str, value: object, drop: bool
) -> None:
    """A wrong type (or a missing field) anywhere in a state file is a StateError, never another
    exception; whatever loads can be written and read back."""
    doc: object = _valid_document()
    node: Any = doc
    for step in path:
        node = node[step]
    if isinstance(node, list):  # a wrong item in a list
        node[:] = [] if drop else [value]
    elif drop:
        node.pop(key, None)
    else:
        node[key] = value
    try:
        state = State.from_dict(doc, source="fuzz.json")
    except StateError as exc:
        assert str(exc).startswith("fuzz.json: ")
        return
    assert State.from_dict(json.loads(state.to_json())) == state
    for record in state.final_snapshots:
        assert isinstance(record["address"], str) and isinstance(record["snapshot_id"], str)
    assert isinstance(dict(state.outputs), dict)


# -- a write never leaves the state file missing ------------------------------------------------

_WRITE_STEPS = ("mkstemp", "fchmod", "write", "fsync", "link", "replace")


def _two_states() -> tuple[State, State]:
    s1 = make_state()
    return s1, s1.with_outputs({"vpc_id": "vpc-1"}).bumped()


@pytest.mark.parametrize("step", _WRITE_STEPS)
@pytest.mark.parametrize("boom", [OSError(28, "No space left on device"), KeyboardInterrupt(), SystemExit(1)])
@pytest.mark.parametrize("nth", [1, 2])
def test_a_write_failing_at_any_step_keeps_a_readable_state_and_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, boom: BaseException, nth: int
) -> None:
    """OSError, Ctrl-C or SystemExit at any call of a write (the n-th of that kind): the old state
    is in place (or the new one, when the failure came after the rename), never none, and no
    temporary is left."""
    import tempfile

    b = LocalBackend(tmp_path, "c1")
    s1, s2 = _two_states()
    b.write(s1)
    import byoc.state.local as local

    calls = {"n": 0}
    real = {"mkstemp": tempfile.mkstemp, "fchmod": os.fchmod, "write": os.write, "fsync": os.fsync,
            "link": os.link, "replace": os.replace}

    def failing(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth:
            raise boom
        return real[step](*args, **kw)

    if step == "mkstemp":
        monkeypatch.setattr(local.tempfile, "mkstemp", failing)
    else:
        monkeypatch.setattr(local.os, step, failing)
    raised: BaseException | None = None
    try:
        b.write(s2)
    except (StateError, KeyboardInterrupt, SystemExit) as exc:
        raised = exc
    monkeypatch.undo()
    if calls["n"] < nth or (isinstance(boom, OSError) and (step == "link" or (step, nth) == ("fsync", 2))):
        # the step was not called that often, a failed hard link fell back to a copy, or the
        # directory's fsync (after the rename: the new state is in place) failed
        assert raised is None and LocalBackend(tmp_path, "c1").read() == s2
    elif isinstance(boom, OSError):
        assert isinstance(raised, StateError) and "disk is full" in str(raised)
    else:
        assert type(raised) is type(boom)
    assert LocalBackend(tmp_path, "c1").read() in (s1, s2)
    assert not list(tmp_path.glob(".c1.*")), "a temporary was left behind"
    if b.backup_path.exists():
        assert json.loads(b.backup_path.read_text())["serial"] == s1.serial


KILLER = """
import os, signal, sys, tempfile
sys.path.insert(0, sys.argv[1])
from byoc.state import LocalBackend, ResourceState, State
import byoc.state.local as local
k, calls = int(sys.argv[3]), [0]
def wrap(real):
    def call(*a, **kw):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **kw)
    return call
b = LocalBackend(sys.argv[2], "c1")
state = b.read()
for name in ("replace", "link", "fsync", "write", "fchmod", "unlink", "close"):
    setattr(local.os, name, wrap(getattr(os, name)))
local.tempfile.mkstemp = wrap(tempfile.mkstemp)
for i in range(3):
    state = state.with_outputs({"n": str(i)}).bumped()
    b.write(state)
print("done", calls[0], flush=True)
"""


def test_a_process_sigkilled_at_every_call_of_its_writes_always_leaves_a_valid_state(tmp_path: Path) -> None:
    """SIGKILL before each file-system call of three successive writes: afterwards the state file
    is there and valid (the last complete write or the one before), and the next locked run
    clears the temporaries."""
    root = str(Path(__file__).resolve().parents[1])
    s0 = make_state()
    k, points = 1, 0
    while True:
        d = tmp_path / f"k{k}"
        LocalBackend(d, "c1").write(s0)
        p = subprocess.run([sys.executable, "-c", KILLER, root, str(d), str(k)], capture_output=True,
                           text=True, timeout=60)
        if p.returncode == 0:
            break
        assert p.returncode == -signal.SIGKILL, p.stderr
        points += 1
        state = LocalBackend(d, "c1").read()
        assert state is not None and state.lineage == s0.lineage
        assert s0.serial <= state.serial <= s0.serial + 3
        with LocalBackend(d, "c1").lock("apply"):
            pass
        assert not list(d.glob(".c1.*.tmp"))
        k += 1
    assert points >= 15, points  # every step of every write was a kill point


@pytest.mark.parametrize("leftover", ["backup", "stray"])
def test_no_state_file_but_a_backup_or_stray_temporary_refuses_to_start_fresh(
    tmp_path: Path, leftover: str
) -> None:
    b = LocalBackend(tmp_path, "c1")
    s1, s2 = _two_states()
    b.write(s1)
    b.write(s2)
    if leftover == "stray":  # killed between writing the temporary and renaming it
        (tmp_path / ".c1.abc123.tmp").write_text(s2.bumped().to_json())
        b.backup_path.unlink()
    b.path.unlink()
    name = ".c1.abc123.tmp" if leftover == "stray" else "c1.json.backup"
    serial = s2.serial + 1 if leftover == "stray" else s1.serial
    with pytest.raises(StateError, match=rf"no state file, but .*{name} holds the state of cluster c1 "
                       rf"\(serial {serial}.*byoc state restore-backup SPEC"):
        LocalBackend(tmp_path, "c1").read()
    # an unreadable leftover is no evidence: only valid states count
    (tmp_path / ".c1.junk.tmp").write_text("{trunc")
    with pytest.raises(StateError, match=name):
        LocalBackend(tmp_path, "c1").read()
    with LocalBackend(tmp_path, "c1").lock("apply"):  # the strays are kept while there is no state
        pass
    assert (tmp_path / name).exists()
    restored = LocalBackend(tmp_path, "c1")
    with restored.lock("state restore-backup"):
        source, state = restored.restore_backup()
    assert source.name == name and state.serial == serial
    assert restored.read() == state
    restored.write(state.bumped())  # the writer goes on from the restored state
    with pytest.raises(StateError, match="a state file exists"):
        restored.restore_backup()


def test_state_path_that_is_a_file_or_unwritable_is_explained(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    b = LocalBackend(tmp_path / "afile", "c1")
    for call in (lambda: b.write(make_state()), b.read, lambda: b.lock("apply").__enter__()):
        with pytest.raises(StateError, match=r"afile: the state directory \(state.path\) is not a directory"):
            call()


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_an_unwritable_state_directory_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Permission denied, the immutable flag (EPERM, even for root) or a read-only mount."""
    import byoc.state.local as local

    b = LocalBackend(tmp_path, "c1")
    b.write(make_state())
    state = b.read()
    assert state is not None

    def refuse(*args: Any, **kw: Any) -> Any:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(local.tempfile, "mkstemp", refuse)
    with pytest.raises(StateError, match=rf"{os.strerror(code)}. Make the directory .* writable .*lsattr"):
        b.write(state.bumped())
    monkeypatch.setattr(local, "open", refuse, raising=False)
    with pytest.raises(StateError, match=r"c1.lock: cannot open the lock file"), b.lock("apply"):
        pass
    monkeypatch.undo()
    assert LocalBackend(tmp_path, "c1").read() == state


def test_lock_timeout_waits_for_a_held_lock_then_takes_it_or_names_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--lock-timeout``: a held lock is polled until it is free (here freed by the holder exiting
    after the first poll), or refused after the timeout, naming the holder."""
    import byoc.state.local as local

    p = _holder(tmp_path)
    b = LocalBackend(tmp_path, "c1")
    with pytest.raises(LockError, match=rf"pid {p.pid} on .*\(waited 0.3s\)"), b.lock("apply", timeout=0.3):
        pass
    sleep = time.sleep

    def poll(seconds: float) -> None:  # the holder goes away while we wait
        p.kill()
        p.wait()
        sleep(seconds)

    monkeypatch.setattr(local.time, "sleep", poll)
    with b.lock("apply", timeout=60) as info:
        assert info.pid == os.getpid() and p.poll() is not None


def test_the_bytes_written_with_a_cache_are_json_dumps_of_the_document_after_every_change() -> None:
    """The stores write ``to_bytes(cache)``: parts kept from the write before, the rest serialised
    anew; after each kind of change it is the document's ``json.dumps(indent=2)``, byte for byte."""
    def rs(n: int, value: str = "v") -> ResourceState:
        return ResourceState(f"aws_subnet.s[{n}]", "aws_subnet", f"subnet-{n}", {"cidr": value, "n": n},
                             {"arn": f"arn:{n}", "tags": {"Name": "é ✓"}}, ("aws_vpc.main",))

    state = make_state()
    steps = [
        lambda s: s.with_changes({r.address: r for r in (rs(3), rs(1), rs(2))}),
        lambda s: s.with_changes({"aws_subnet.s[2]": rs(2, "changed"), "aws_subnet.s[1]": None}),
        lambda s: s.with_outputs({"vpc_id": "vpc-1", "ids": ["a", "b"]}),
        lambda s: s.with_facts({"ami": "ami-1"}),
        lambda s: s.with_final_snapshot("aws_ebs_volume.d[0]", "vol-1", "snap-1", "2026-12-02T00:00:00Z"),
        lambda s: s.without("aws_vpc.main").without("aws_subnet.s[3]").without("aws_subnet.s[2]"),
    ]
    cache: dict[int, tuple[object, bytes]] = {}
    for step in steps:
        state = step(state).bumped()
        assert state.to_bytes(cache) == (json.dumps(state.to_dict(), indent=2) + "\n").encode()
        assert state.to_json() == json.dumps(state.to_dict(), indent=2) + "\n"
    assert cache  # what the next write reuses
