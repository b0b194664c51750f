"""The local state store: atomic writes, backups, permissions, refusal of bad files, the lock."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        lambda s: s.without("aws_vpc.main"),
        lambda s: s.without('aws_subnet.a["x"]'),
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
    with pytest.raises(StateError, match="newer than this run"):
        mine.write(state.bumped())


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
