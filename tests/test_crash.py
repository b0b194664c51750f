"""Crash safety: the real CLI, SIGKILLed after its k-th AWS call during apply and during destroy,
converges when run again — no duplicate resources, nothing leaked, the state always valid.

The normal suite samples a few kill points; ``pytest -m sweep tests/test_crash.py`` tries every
``SWEEP_STEP``-th call of apply and of destroy (BYOC_SWEEP_STEP overrides the step).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.killcli import owned, run_until, state_file_ok, untracked
from tests.motoserver import MotoServer

CLUSTER = "dev-proton"
ADDRESSES = 23  #: distinct byoc:address tags of specs/dev.yaml that `owned` counts
RESOURCES = 39  #: resources in its state after a complete apply
APPLY = ["apply", "specs/dev.yaml", "--auto-approve"]
DESTROY = ["destroy", "specs/dev.yaml", "--auto-approve", "--include-data"]
#: (k for apply, k for destroy): early, middle and late calls of each (apply makes ~155, destroy ~140)
SAMPLE = [(7, 100), (60, 25), (140, 130)]
SWEEP_STEP = int(os.environ.get("BYOC_SWEEP_STEP", "5"))


def _crash_and_recover(
    server: MotoServer, work: Path, args: list[str], k: int, must_kill: bool = True
) -> int:
    """Kill ``byoc ARGS`` after k calls, check the state file, run it again to the end; returns the
    calls made before the kill. Only the sweep may pass a k beyond the run's last call."""
    env = server.env()
    state = work / "state" / f"{CLUSTER}.json"
    code, calls, err = run_until(args, env, work, k)
    assert "Traceback" not in err
    killed = (code, calls) == (-signal.SIGKILL, k)
    assert killed or (not must_kill and code == 0 and calls < k), (code, calls)
    state_file_ok(state)
    code, _, err = run_until(args, env, work, None)
    assert code == 0, err[-3000:]
    state_file_ok(state)
    return calls


def _check_applied(server: MotoServer, work: Path) -> None:
    counts = owned(server, CLUSTER)
    dups = {a: n for a, n in counts.items() if n > 1}
    assert dups == {}, f"duplicates: {dups}"
    assert len(counts) == ADDRESSES
    data = state_file_ok(work / "state" / f"{CLUSTER}.json")
    assert data is not None and len(data["resources"]) == RESOURCES


def _check_destroyed(server: MotoServer, work: Path) -> None:
    assert owned(server, CLUSTER) == {}, "leaked"
    data = state_file_ok(work / "state" / f"{CLUSTER}.json")
    assert data is not None and data["resources"] == []


def _cycle(server: MotoServer, work: Path, k_apply: int, k_destroy: int) -> None:
    server.reset()
    _crash_and_recover(server, work, APPLY, k_apply)
    _check_applied(server, work)
    _crash_and_recover(server, work, DESTROY, k_destroy)
    _check_destroyed(server, work)


@pytest.mark.parametrize(("k_apply", "k_destroy"), SAMPLE)
def test_killed_apply_and_destroy_converge(
    server: MotoServer, work: Path, k_apply: int, k_destroy: int
) -> None:
    _cycle(server, work, k_apply, k_destroy)


@pytest.mark.sweep
@pytest.mark.parametrize("k", range(1, 160, SWEEP_STEP))
def test_sweep_apply(server: MotoServer, work: Path, k: int) -> None:
    server.reset()
    _crash_and_recover(server, work, APPLY, k, must_kill=False)
    _check_applied(server, work)
    p = subprocess.run([sys.executable, "-m", "byoc", "plan", "specs/dev.yaml", "--detailed-exitcode"],
                       env=server.env(), cwd=work, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout  # converged: nothing left to do


@pytest.mark.sweep
@pytest.mark.parametrize("k", range(1, 145, SWEEP_STEP))
def test_sweep_destroy(server: MotoServer, work: Path, k: int) -> None:
    server.reset()
    code, _, err = run_until(APPLY, server.env(), work, None)
    assert code == 0, err[-3000:]
    _crash_and_recover(server, work, DESTROY, k, must_kill=False)
    _check_destroyed(server, work)


# -- interrupts: SIGINT / SIGTERM at the k-th AWS call --------------------------------------------
#: (signal, k) for apply and for destroy: early (planning or the first operations), middle, late
SIGNAL_SAMPLE = [(signal.SIGINT, 45, 60), (signal.SIGTERM, 110, 120)]


def _interrupt(server: MotoServer, work: Path, args: list[str], sig: signal.Signals, k: int) -> None:
    """Interrupt ``byoc ARGS`` once at the k-th call: exit 1 with the runbook's message, the state
    valid and recording everything tagged for the cluster, the lock released (the re-run takes it)."""
    code, calls, err = run_until(args, server.env(), work, k, sig)
    assert calls >= k, err[-3000:]
    assert code == 1, err[-3000:]
    assert "Traceback" not in err
    assert "Interrupt received.\nPlease wait for byoc to exit or data loss may occur." in err, err[-2000:]
    assert "Interrupted: work in flight finished and the state was saved." in err
    state = state_file_ok(work / "state" / f"{CLUSTER}.json")
    assert untracked(server, CLUSTER, state) == set(), "created but not recorded in the state"
    code, _, err = run_until(args, server.env(), work, None)
    assert code == 0, err[-3000:]


@pytest.mark.parametrize(("sig", "k_apply", "k_destroy"), SIGNAL_SAMPLE)
def test_interrupted_apply_and_destroy_stop_gracefully_and_converge(
    server: MotoServer, work: Path, sig: signal.Signals, k_apply: int, k_destroy: int
) -> None:
    server.reset()
    _interrupt(server, work, APPLY, sig, k_apply)
    _check_applied(server, work)
    _interrupt(server, work, DESTROY, sig, k_destroy)
    _check_destroyed(server, work)


def test_two_interrupts_exit_at_once_naming_what_is_abandoned(server: MotoServer, work: Path) -> None:
    server.reset()
    code, _, err = run_until(APPLY, server.env(), work, 70, signal.SIGINT, times=2)
    assert code == 1, err[-3000:]
    assert "Traceback" not in err
    assert "Two interrupts received. Exiting immediately. Note that data loss may have occurred." in err
    assert "Abandoned in flight: " in err or "Nothing was in flight." in err
    state_file_ok(work / "state" / f"{CLUSTER}.json")
    code, _, err = run_until(APPLY, server.env(), work, None)  # the lock went with the process
    assert code == 0, err[-3000:]
    _check_applied(server, work)
