"""Restore: check a backup's manifest against the spec and the state, and turn it into the facts
that make a plan replace each node's data volume by one created from the backup's snapshot.

The plan itself is an ordinary plan (``Engine.plan(restore=...)``) made with final snapshots, so
the volumes being replaced are snapshotted before they are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from byoc.aws.context import AwsContext
from byoc.errors import ByocError
from byoc.operations.backup import Manifest
from byoc.resources._snapshots import snapshot_states
from byoc.spec import Spec
from byoc.state.model import State

if TYPE_CHECKING:
    from byoc.engine import Engine
    from byoc.plan import Plan


@dataclass(frozen=True)
class RestorePoints:
    """What a restore will do: node key → (snapshot id, AZ), and the mismatches it was told to accept."""

    backup_id: str
    points: dict[str, tuple[str, str]]
    mismatches: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # manifest nodes the spec has no node for


def check_manifest(manifest: Manifest, spec: Spec, state: State | None) -> list[str]:
    """Every way the backup does not fit the cluster: its name, node count and each node's AZ
    (the AZ of its existing data volume, else the one the spec gives a new node)."""
    problems = []
    if manifest.cluster != spec.cluster_name:
        problems.append(
            f"the backup is of cluster {manifest.cluster!r}, the spec is for {spec.cluster_name!r}"
        )
    if len(manifest.nodes) != spec.instance_count:
        problems.append(
            f"the backup has {len(manifest.nodes)} node(s), the spec has {spec.instance_count} "
            "(compute.instance_count)"
        )
    azs = list(spec.availability_zones)
    resources = state.resources if state else {}
    for i in range(spec.instance_count):
        key = str(i)
        node = manifest.nodes.get(key)
        if node is None:
            problems.append(f"the backup has no node {key}: its data volume would be kept as it is")
            continue
        vol = resources.get(f'aws_ebs_volume.data["{key}"]')
        want = (
            str(vol.props.get("availability_zone"))
            if vol
            else (node.availability_zone if node.availability_zone in azs else azs[i % len(azs)])
        )
        if node.availability_zone != want:
            problems.append(
                f"node {key} was backed up in {node.availability_zone}, it is in {want} now "
                "(the volume is created there from the snapshot)"
            )
    return problems


def restore_points(
    ctx: AwsContext, manifest: Manifest, spec: Spec, state: State | None, *, force: bool = False
) -> RestorePoints:
    """Validate the manifest (a mismatch is refused unless ``force``) and check that every snapshot
    still exists and is complete."""
    if manifest.region != spec.region:
        raise ByocError(
            f"backup {manifest.backup_id} was taken in {manifest.region} and its snapshots are "
            f"there; the spec's region is {spec.region}. Copy the snapshots first "
            "(aws ec2 copy-snapshot), or restore into a cluster in that region"
        )
    problems = check_manifest(manifest, spec, state)
    if problems and not force:
        raise ByocError(
            f"backup {manifest.backup_id} does not match cluster {spec.cluster_name}:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nFix the spec (or --set) to match, or pass --force to restore the nodes both have."
        )
    keys = {str(i) for i in range(spec.instance_count)}
    points = {k: (n.snapshot_id, n.availability_zone) for k, n in manifest.nodes.items() if k in keys}
    ignored = tuple(sorted(k for k in manifest.nodes if k not in keys))
    if not points:
        raise ByocError(f"backup {manifest.backup_id} has no node the spec has; nothing to restore")
    _check_snapshots(ctx, manifest, [s for s, _ in points.values()])
    return RestorePoints(manifest.backup_id, points, tuple(problems), ignored)


def _check_snapshots(ctx: AwsContext, manifest: Manifest, snapshot_ids: list[str]) -> None:
    """Every snapshot exists and is complete (one DescribeSnapshots; unknown ids are left out)."""
    states = snapshot_states(ctx, snapshot_ids)
    bad = [f"{sid} ({states.get(sid, 'missing')})" for sid in snapshot_ids if states.get(sid) != "completed"]
    if bad:
        raise ByocError(
            f"backup {manifest.backup_id} cannot be restored: snapshot(s) {', '.join(bad)} "
            "are not there and complete; `byoc backups list` shows the usable backups"
        )


def restored_volumes(points: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """data volume address → the snapshot it is restored from."""
    return {f'aws_ebs_volume.data["{k}"]': s for k, (s, _) in sorted(points.items())}


def plan_restore(engine: Engine, backup_id: str, *, force: bool = False) -> tuple[Plan, RestorePoints]:
    """Read and check the backup's manifest, then plan: each node's data volume replaced by one
    created from its snapshot, the old volume snapshotted first. The caller holds the lock."""
    from byoc.operations.backup import read_manifest
    from byoc.planner import PlanOptions

    manifest = read_manifest(engine.ctx, engine.spec, backup_id)
    points = restore_points(engine.ctx, manifest, engine.spec, engine.state(), force=force)
    plan = engine.plan(PlanOptions(final_snapshots=True), restore=points.points)
    engine.refuse_upgrade_without_steps(plan)  # before the plan is shown and confirmed
    return plan, points
