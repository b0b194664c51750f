"""Application-consistent snapshots: each node's data filesystem is flushed and frozen (``fsfreeze``)
through SSM while its snapshot starts, then thawed as soon as it has.

The thaw is guaranteed twice: byoc sends it on every way out (``frozen`` thaws in ``finally``, so also
on Ctrl-C and SIGTERM, which the CLI turns into KeyboardInterrupt), and the freeze script arms a
node-side time limit *before* it freezes (a transient systemd timer, or a detached sleeper where
systemd-run is missing), so a node thaws by itself even if byoc dies or loses the network.

A node that cannot be frozen (SSM cannot reach it, its freeze fails, its data volume is not attached)
is never silently snapshotted crash-consistent: ``frozen`` refuses unless the caller allows it, and
then the node's snapshot is recorded as ``crash``.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from byoc.aws.context import AwsContext
from byoc.errors import ByocError
from byoc.operations.ssm import NodeRun, run_script
from byoc.userdata import DATA_MOUNT

APPLICATION, CRASH = "application", "crash"
#: how long a node may stay frozen before it thaws itself (``--freeze-timeout``)
DEFAULT_FREEZE_TIMEOUT = 60
#: bounds of ``--freeze-timeout``: long enough for SSM's round trip, short enough not to stall Proton
MIN_FREEZE_TIMEOUT, MAX_FREEZE_TIMEOUT = 10, 900
#: exit code of the freeze script when the node cannot be frozen (not mounted, no fsfreeze, no timer)
CANNOT_FREEZE = 3


def unit_name(backup_id: str) -> str:
    """The node-side time limit's systemd unit (and sleeper pid file) for one backup."""
    return "byoc-thaw-" + re.sub(r"[^A-Za-z0-9_.-]", "-", backup_id)


def freeze_script(backup_id: str, limit: int, mount: str = DATA_MOUNT) -> str:
    """Arm the node-side thaw after ``limit`` seconds, flush, then freeze ``mount``. Prints one line."""
    unit, mnt = unit_name(backup_id), shlex.quote(mount)
    return "\n".join([
        "#!/bin/bash",
        "set -uo pipefail",
        f"MNT={mnt} UNIT={unit} LIMIT={int(limit)}",
        'mountpoint -q "$MNT" || { echo "byoc: $MNT is not mounted on this node" >&2; exit '
        f"{CANNOT_FREEZE}; }}",
        'command -v fsfreeze >/dev/null || { echo "byoc: fsfreeze (util-linux) is not installed" >&2; '
        f"exit {CANNOT_FREEZE}; }}",
        "# the time limit first: the node thaws itself after $LIMIT s, whatever becomes of byoc",
        "if command -v systemd-run >/dev/null; then",
        '  systemctl stop "$UNIT.timer" 2>/dev/null; systemctl reset-failed "$UNIT.service" 2>/dev/null',
        '  systemd-run --quiet --unit "$UNIT" --on-active="${LIMIT}s" /bin/sh -c "fsfreeze -u $MNT || true" '
        f'|| {{ echo "byoc: cannot arm the thaw timer (systemd-run)" >&2; exit {CANNOT_FREEZE}; }}',
        "else",
        '  nohup /bin/sh -c "sleep $LIMIT; fsfreeze -u $MNT" >/dev/null 2>&1 &',
        '  echo $! >"/run/$UNIT.pid"',
        "fi",
        "sync",
        'if ! out=$(fsfreeze -f "$MNT" 2>&1); then',
        '  systemctl stop "$UNIT.timer" 2>/dev/null',
        '  [ -f "/run/$UNIT.pid" ] && kill "$(cat "/run/$UNIT.pid")" 2>/dev/null',
        '  echo "byoc: fsfreeze -f $MNT failed: $out" >&2',
        f"  exit {CANNOT_FREEZE}",
        "fi",
        'echo "byoc: $MNT frozen; it thaws by itself within ${LIMIT}s"',
    ]) + "\n"


def thaw_script(backup_id: str, mount: str = DATA_MOUNT) -> str:
    """Thaw ``mount`` and disarm the time limit; prints whether it was still frozen."""
    unit, mnt = unit_name(backup_id), shlex.quote(mount)
    return "\n".join([
        "#!/bin/bash",
        "set -uo pipefail",
        f"MNT={mnt} UNIT={unit}",
        'if out=$(fsfreeze -u "$MNT" 2>&1); then echo "byoc: $MNT thawed"',
        'else echo "byoc: $MNT was not frozen ($out)"; fi',
        'systemctl stop "$UNIT.timer" 2>/dev/null',
        'PIDF="/run/$UNIT.pid"',
        'if [ -f "$PIDF" ]; then kill "$(cat "$PIDF")" 2>/dev/null; rm -f "$PIDF"; fi',
        "exit 0",
    ]) + "\n"


@dataclass
class Freeze:
    """The nodes frozen for one backup: which ones, since when, and what their thaw said."""

    limit: int
    #: monotonic time just before the freeze was sent: every node froze after it
    sent_at: float
    runs: dict[str, NodeRun] = field(default_factory=dict)
    #: nodes that could not be frozen → why (an unattached volume has no run)
    problems: dict[str, str] = field(default_factory=dict)
    #: what byoc noticed that the user should know (a thaw SSM could not deliver …)
    notes: list[str] = field(default_factory=list)
    monotonic: Callable[[], float] = time.monotonic

    def consistency(self, node: str) -> str:
        """``application`` for a node frozen now (its time limit not yet reached), else ``crash``."""
        run = self.runs.get(node)
        if run is None or not run.ok or node in self.problems:
            return CRASH
        return APPLICATION if self.monotonic() - self.sent_at < self.limit else CRASH

    def expired(self, node: str, what: str) -> None:
        """A frozen node whose ``what`` came after its time limit: it may have thawed before."""
        self.problems[node] = (f"{what} started more than {self.limit} s after the freeze was sent, when "
                               "the node may already have thawed itself")


def frozen_failure(problems: Mapping[str, str], *, timeout_hint: bool = False) -> ByocError:
    """The refusal for nodes that could not be frozen, with the ways forward."""
    lines = "\n".join(f"  - {p}" for _, p in sorted(problems.items()))
    more = ("\nIf the freeze itself is slow, give it longer with --freeze-timeout." if timeout_hint else "")
    return ByocError(
        f"could not take an application-consistent backup: {len(problems)} node(s) could not be "
        f"frozen through SSM:\n{lines}\nNothing was kept. To back up anyway: --allow-crash-consistent "
        "(only these nodes are snapshotted crash-consistent, as after a power cut, and the manifest "
        "says so) or --crash-consistent (no node is frozen)." + more
    )


@contextmanager
def frozen(
    ctx: AwsContext,
    targets: Mapping[str, str],
    backup_id: str,
    *,
    limit: int = DEFAULT_FREEZE_TIMEOUT,
    allow_crash: bool = False,
    unattached: Mapping[str, str] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[Freeze]:
    """Freeze each target node's data filesystem (node key → instance id) for the body of the
    ``with``, and thaw every node the freeze may have reached on the way out, whatever happens.

    A node that cannot be frozen (and each of ``unattached``: node key → why) stops it before the
    body runs, unless ``allow_crash``: then it is in ``problems`` and its consistency is ``crash``."""
    fz = Freeze(limit, monotonic(), monotonic=monotonic, problems=dict(unattached or {}))
    reached: Mapping[str, str] = targets  # until SSM says otherwise, every node may be frozen
    try:
        if targets:
            fz.runs = run_script(ctx, targets, freeze_script(backup_id, limit),
                                 comment=f"byoc {ctx.cluster}: freeze for {backup_id}", timeout=limit)
            reached = {n: targets[n] for n, r in fz.runs.items() if r.reachable}
        for node, run in fz.runs.items():
            if not run.ok:
                fz.problems[node] = run.describe() + (
                    "" if run.reachable else "; is its SSM agent running and registered?")
        if fz.problems and not allow_crash:
            raise frozen_failure(fz.problems)
        yield fz
    finally:
        if reached:
            _thaw(ctx, reached, backup_id, fz)


def _thaw(ctx: AwsContext, targets: Mapping[str, str], backup_id: str, fz: Freeze) -> None:
    """Send the thaw; never raises (it runs on the way out of a failure too): what went wrong is a note."""
    limit = f"it thaws by itself within {fz.limit} s of its freeze"
    try:
        runs = run_script(ctx, targets, thaw_script(backup_id),
                          comment=f"byoc {ctx.cluster}: thaw after {backup_id}", timeout=30)
    except Exception as exc:  # a thaw not sent must not hide why we are here
        fz.notes.append(f"the thaw could not be sent through SSM ({exc}); every frozen node: {limit}")
        return
    for run in runs.values():
        if not run.ok:
            fz.notes.append(f"thaw failed on {run.describe()}; {limit}")
