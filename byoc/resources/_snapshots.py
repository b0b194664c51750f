"""EBS snapshots of data volumes: taken for backups and before a data volume is deleted.

One mechanism for both: CreateSnapshot with its tags in the call, then one DescribeSnapshots per
poll for all of them until each is ``completed`` (real AWS: minutes for a large volume; an
``error`` state fails with AWS's reason).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import to_cloud_error
from byoc.aws.tags import CLUSTER_TAG, tag_specs
from byoc.errors import CloudError

#: tag on a final snapshot (its marker): the address of the volume it preserves
FINAL_SNAPSHOT_TAG = "byoc:final-snapshot-of"
#: tag on a final snapshot: the id of the volume it preserves
VOLUME_ID_TAG = "byoc:volume-id"
#: tag on a backup's snapshots: the backup id
BACKUP_TAG = "byoc:backup-id"
#: a snapshot of a 1 TiB volume can take hours the first time
SNAPSHOT_TIMEOUT = 6 * 3600.0


@dataclass(frozen=True)
class Snapshot:
    """A completed snapshot of one volume."""

    snapshot_id: str
    volume_id: str
    size_gb: int
    state: str
    started: str


def create_snapshot(
    ctx: AwsContext, volume_id: str, *, description: str, tags: Mapping[str, str], address: str | None = None
) -> str:
    """Start a snapshot of ``volume_id``, tagged in the call; returns its id."""
    ec2 = ctx.client("ec2")
    try:
        out = ctx.retry(lambda: ec2.create_snapshot(
            VolumeId=volume_id,
            Description=description[:255],
            TagSpecifications=tag_specs("snapshot", {CLUSTER_TAG: ctx.cluster, **tags}),
        ), codes={"SnapshotCreationPerVolumeRateExceeded", "IncorrectState"})
    except Exception as exc:
        raise to_cloud_error(exc, address, volume_id) from exc
    return str(out["SnapshotId"])


def wait_snapshots(
    ctx: AwsContext, snapshot_ids: Sequence[str], *, timeout: float = SNAPSHOT_TIMEOUT, what: str = ""
) -> dict[str, Snapshot]:
    """Poll until every snapshot is ``completed``; a snapshot in ``error`` fails with AWS's reason."""
    if not snapshot_ids:
        return {}
    ec2 = ctx.client("ec2")

    def read() -> list[dict[str, Any]]:
        # a snapshot just created may not be visible yet (eventual consistency)
        return ctx.retry(lambda: ec2.describe_snapshots(SnapshotIds=list(snapshot_ids))["Snapshots"],
                         codes={"InvalidSnapshot.NotFound"}, timeout=120.0)

    def done(found: list[dict[str, Any]]) -> bool:
        for s in found:
            if s.get("State") == "error":
                raise CloudError(
                    f"snapshot of {s.get('VolumeId')} failed: {s.get('StateMessage') or 'no reason given'}",
                    aws_id=s.get("SnapshotId"), code="SnapshotFailed",
                )
        return len(found) == len(snapshot_ids) and all(s.get("State") == "completed" for s in found)

    found = ctx.poll(read, done, timeout=timeout, what=what or f"snapshots {', '.join(snapshot_ids)}")
    return {
        str(s["SnapshotId"]): Snapshot(
            str(s["SnapshotId"]), str(s.get("VolumeId") or ""), int(s.get("VolumeSize") or 0),
            str(s.get("State")), str(s.get("StartTime") or ""),
        )
        for s in found
    }


def snapshot_states(ctx: AwsContext, snapshot_ids: Sequence[str]) -> dict[str, str]:
    """snapshot id → state (``pending``, ``completed``, ``error`` …) in one call; ids that do not
    exist (deleted, another region) are absent rather than an error."""
    if not snapshot_ids:
        return {}
    try:
        found = ctx.client("ec2").describe_snapshots(
            Filters=[{"Name": "snapshot-id", "Values": list(snapshot_ids)}])["Snapshots"]
    except Exception as exc:
        raise to_cloud_error(exc) from exc
    return {str(s["SnapshotId"]): str(s.get("State")) for s in found}


def final_snapshot(ctx: AwsContext, address: str, volume_id: str) -> str:
    """Snapshot a data volume about to be deleted and wait until it is complete; returns its id.
    A final snapshot of this volume that a killed run already started (found by its tags) is
    reused, never taken twice; so is one whose CreateSnapshot was answered 5xx after AWS started it
    (looked for by its tags before the call is made again, as the executor does for creates)."""
    found: list[str] = []

    def look() -> bool:
        sid = existing_final_snapshot(ctx, address, volume_id)
        found.extend([sid] if sid else [])
        return sid is not None

    sid = found[-1] if look() else ctx.mutate(lambda: create_snapshot(
        ctx, volume_id,
        description=f"byoc final snapshot of {address} ({volume_id}) in cluster {ctx.cluster}",
        tags={FINAL_SNAPSHOT_TAG: address, VOLUME_ID_TAG: volume_id,
              "Name": f"{ctx.cluster}-final-{volume_id}"},
        address=address,
    ), done=look) or found[-1]
    try:
        wait_snapshots(ctx, [sid], what=f"the final snapshot {sid} of {volume_id}")
    except CloudError as exc:
        exc.address = exc.address or address
        raise
    return sid


def existing_final_snapshot(ctx: AwsContext, address: str, volume_id: str) -> str | None:
    """The newest usable (completed, else pending) final snapshot of ``volume_id`` at ``address``
    in this cluster, by its tags; None when there is none (snapshots in ``error`` do not count)."""
    found = [s for s in final_snapshots(ctx, volume_id=volume_id)
             if _tags(s).get(FINAL_SNAPSHOT_TAG) == address and s.get("State") in ("completed", "pending")]
    if not found:
        return None
    best = max(found, key=lambda s: (s.get("State") == "completed", str(s.get("StartTime") or "")))
    return str(best["SnapshotId"])


def final_snapshots(ctx: AwsContext, volume_id: str | None = None) -> list[dict[str, Any]]:
    """Every final snapshot of this cluster in AWS (by its tags), or of one volume."""
    filters = [{"Name": "tag:" + CLUSTER_TAG, "Values": [ctx.cluster]},
               {"Name": "tag-key", "Values": [FINAL_SNAPSHOT_TAG]}]
    if volume_id is not None:
        filters.append({"Name": "volume-id", "Values": [volume_id]})
    ec2 = ctx.client("ec2")
    try:
        pages = ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters)
        found = [s for page in pages for s in page["Snapshots"]]
    except Exception as exc:
        raise to_cloud_error(exc, None, volume_id) from exc
    # the filters are applied again here: a partial emulation must not hand out strangers
    return [s for s in found if _tags(s).get(CLUSTER_TAG) == ctx.cluster and FINAL_SNAPSHOT_TAG in _tags(s)
            and (volume_id is None or s.get("VolumeId") == volume_id)]


def _tags(snapshot: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in snapshot.get("Tags") or ()}
