"""Crash safety: the real CLI, SIGKILLed (or interrupted by SIGINT/SIGTERM, once or twice) after its
k-th AWS call during apply and during destroy, converges when run again — no duplicate resources,
nothing leaked, the state always valid, and after an interrupt everything created is in the state.

The normal suite samples a few kill and signal points; ``pytest -m sweep tests/test_crash.py`` tries
every ``SWEEP_STEP``-th call of apply and of destroy (BYOC_SWEEP_STEP overrides the step).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.killcli import CALL_LINE, owned, run_until, state_file_ok, untracked
from tests.motoserver import MotoServer

CLUSTER = "dev-proton"
ADDRESSES = 28  #: distinct byoc:address tags of specs/dev.yaml that `owned` counts
RESOURCES = 44  #: resources in its state after a complete apply
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


def test_destroy_killed_after_deletion_protection_went_off_converges(server: MotoServer, work: Path) -> None:
    """Killed between turning the load balancer's deletion protection off and deleting it: the LB
    is there unprotected and the state still records it protected. (That point is set up directly:
    a SIGKILL sent on seeing ModifyLoadBalancerAttributes in the log races the DeleteLoadBalancer
    right behind it.) A plan shows protection to be turned on again, and destroy finishes (with
    nothing left to turn off, so it says nothing of it)."""
    server.reset()
    env = server.env()
    assert run_until(APPLY, env, work, None)[0] == 0
    elb = server.client("elbv2")
    (lb,) = elb.describe_load_balancers(Names=["dev-proton-lb"])["LoadBalancers"]
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    state = state_file_ok(work / "state" / f"{CLUSTER}.json")
    assert state is not None
    recorded = next(r for r in state["resources"] if r["address"] == "aws_lb.main")
    assert recorded["props"]["enable_deletion_protection"] is True
    p = subprocess.run([sys.executable, "-m", "byoc", "plan", "specs/dev.yaml", "--detailed-exitcode"],
                       env=env, cwd=work, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "# aws_lb.main will be updated in-place" in p.stdout
    assert "~ enable_deletion_protection = false -> true" in p.stdout
    p = subprocess.run([sys.executable, "-m", "byoc", *DESTROY], env=env, cwd=work, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "deletion protection turned off" not in p.stdout
    _check_destroyed(server, work)


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


SCALE_UP = ["apply", "specs/dev.yaml", "--auto-approve", "--set", "compute.instance_count=2"]
SCALE_DOWN = ["scale", "specs/dev.yaml", "--count", "1", "--auto-approve"]


def _final_snapshots(server: MotoServer) -> list[str]:
    tag = [{"Name": "tag:byoc:cluster", "Values": [CLUSTER]},
           {"Name": "tag-key", "Values": ["byoc:final-snapshot-of"]}]
    found = server.client("ec2").describe_snapshots(OwnerIds=["self"], Filters=tag)["Snapshots"]
    return [s["SnapshotId"] for s in found]


@pytest.mark.sweep
def test_sweep_scale_down_around_the_final_snapshot(server: MotoServer, work: Path) -> None:
    """`byoc scale` 2 → 1 SIGKILLed right around CreateSnapshot and DeleteVolume of the removed
    node's data volume, then run again: one final snapshot, recorded in the state exactly once."""
    server.reset()
    assert run_until(SCALE_UP, server.env(), work, None)[0] == 0
    code, _, err = run_until(SCALE_DOWN, server.env(), work, None)
    assert code == 0, err[-3000:]
    calls = [line for line in err.splitlines() if CALL_LINE.search(line)]
    snap = next(i for i, line in enumerate(calls, 1) if " CreateSnapshot " in line)
    delete = next(i for i, line in enumerate(calls, 1) if " DeleteVolume " in line)
    for k in sorted({snap - 1, snap, snap + 1, delete - 1, delete, delete + 1}):
        server.reset()
        shutil.rmtree(work / "state")
        assert run_until(SCALE_UP, server.env(), work, None)[0] == 0
        _crash_and_recover(server, work, SCALE_DOWN, k)
        found = _final_snapshots(server)
        data = state_file_ok(work / "state" / f"{CLUSTER}.json")
        assert data is not None
        recorded = [r["snapshot_id"] for r in data["final_snapshots"]]
        assert len(found) == 1, f"k={k}: {len(found)} final snapshots"
        assert recorded == found, f"k={k}: recorded {recorded}, in AWS {found}"


# -- interrupts: SIGINT / SIGTERM at the k-th AWS call --------------------------------------------
#: the normal suite interrupts apply with SIGINT and destroy with SIGTERM in their operations;
#: ``pytest -m sweep`` interrupts at every SWEEP_STEP-th call of each, alternating the signals
K_APPLY_SIGINT, K_DESTROY_SIGTERM = 60, 90


def _interrupt(
    server: MotoServer, work: Path, args: list[str], sig: signal.Signals, k: int, strict: bool = True
) -> None:
    """Interrupt ``byoc ARGS`` once at the k-th call: exit 1 with the runbook's message, the state
    valid and recording everything tagged for the cluster, the lock released (the re-run takes it
    and converges). ``strict``: the signal must land while operations run (the sweep also lands
    in planning, where nothing has changed yet, and beyond the run's last call)."""
    code, calls, err = run_until(args, server.env(), work, k, sig)
    assert "Traceback" not in err
    state = state_file_ok(work / "state" / f"{CLUSTER}.json")
    assert untracked(server, CLUSTER, state) == set(), "created but not recorded in the state"
    graceful = "Interrupt received.\nPlease wait for byoc to exit or data loss may occur." in err
    if strict or graceful:
        assert calls >= k and code == 1, err[-3000:]
        assert graceful, err[-2000:]
        assert "Interrupted: work in flight finished and the state was saved." in err
    else:  # before the operations (exit 1, nothing in flight) or after the run's end
        assert (code == 1 and "Interrupted." in err) or (code == 0 and calls < k), (code, calls)
    code, _, err = run_until(args, server.env(), work, None)
    assert code == 0, err[-3000:]


def test_interrupted_apply_and_destroy_stop_gracefully_and_converge(server: MotoServer, work: Path) -> None:
    server.reset()
    _interrupt(server, work, APPLY, signal.SIGINT, K_APPLY_SIGINT)
    _check_applied(server, work)
    _interrupt(server, work, DESTROY, signal.SIGTERM, K_DESTROY_SIGTERM)
    _check_destroyed(server, work)


def _signal(k: int) -> signal.Signals:
    return signal.SIGINT if (k // SWEEP_STEP) % 2 == 0 else signal.SIGTERM


@pytest.mark.sweep
@pytest.mark.parametrize("k", range(1, 160, SWEEP_STEP))
def test_sweep_interrupt_apply(server: MotoServer, work: Path, k: int) -> None:
    server.reset()
    _interrupt(server, work, APPLY, _signal(k), k, strict=False)
    _check_applied(server, work)


@pytest.mark.sweep
@pytest.mark.parametrize("k", range(1, 145, SWEEP_STEP))
def test_sweep_interrupt_destroy(server: MotoServer, work: Path, k: int) -> None:
    server.reset()
    code, _, err = run_until(APPLY, server.env(), work, None)
    assert code == 0, err[-3000:]
    _interrupt(server, work, DESTROY, _signal(k), k, strict=False)
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
