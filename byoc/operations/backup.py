"""Backups: an EBS snapshot of every node's data volume, tagged with the backup id, then a
manifest in the cluster's bucket (``backups/<backup-id>/manifest.json``); listing and pruning them.

By default each node's data filesystem is frozen through SSM while its snapshot starts
(``byoc.operations.fsfreeze``): the snapshot is application-consistent. The manifest records per node
which kind each snapshot is (``application`` or ``crash``); a manifest of format 1 predates freezing,
so its snapshots read as ``crash``.

The manifest is written last, so a backup that was interrupted leaves snapshots without one:
``list_backups`` shows it as incomplete and ``prune_candidates`` picks it (callers hold the state
lock, so no backup is running at the same time).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, to_cloud_error
from byoc.aws.tags import CLUSTER_TAG
from byoc.errors import ByocError, CloudError
from byoc.model import parse_address
from byoc.operations.fsfreeze import (
    APPLICATION,
    CRASH,
    DEFAULT_FREEZE_TIMEOUT,
    MAX_FREEZE_TIMEOUT,
    MIN_FREEZE_TIMEOUT,
    Freeze,
    frozen,
    frozen_failure,
)
from byoc.resources._snapshots import BACKUP_TAG, create_snapshot, wait_snapshots
from byoc.spec import Spec

#: 2: each node records its snapshot's ``consistency`` (format 1 manifests are read as ``crash``)
FORMAT_VERSION = 2
PREFIX = "backups/"
COMPLETE, INCOMPLETE, DAMAGED = "complete", "incomplete", "damaged"


@dataclass(frozen=True)
class BackupNode:
    """One node's part of a backup."""

    address: str  # the data volume's address
    instance_id: str | None
    volume_id: str
    snapshot_id: str
    size_gb: int
    availability_zone: str
    consistency: str = CRASH  # application (frozen through SSM) | crash (as after a power cut)


@dataclass(frozen=True)
class Manifest:
    """What a backup holds; stored as JSON in the bucket."""

    backup_id: str
    cluster: str
    spec_digest: str
    proton_version: str
    region: str
    created_at: str
    nodes: dict[str, BackupNode]
    format_version: int = FORMAT_VERSION
    #: what the user should know about how it was taken (a node not frozen and why, a late thaw)
    notes: tuple[str, ...] = ()

    @property
    def consistency(self) -> str:
        """``application`` or ``crash`` when every node's snapshot is of that kind, else ``mixed``."""
        return consistency_of(n.consistency for n in self.nodes.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["nodes"] = {
            k: asdict(v) for k, v in sorted(self.nodes.items(), key=lambda kv: _node_order(kv[0]))
        }
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "manifest") -> Manifest:
        try:
            if int(data["format_version"]) > FORMAT_VERSION:
                raise ByocError(
                    f"{source}: manifest format {data['format_version']} is newer than this "
                    f"byoc understands ({FORMAT_VERSION}); upgrade byoc"
                )
            nodes = {str(k): BackupNode(**v) for k, v in dict(data["nodes"]).items()}
            odd = sorted({n.consistency for n in nodes.values()} - {APPLICATION, CRASH})
            if odd:
                raise ValueError(f"consistency {', '.join(odd)} is neither {APPLICATION} nor {CRASH}")
            return cls(
                str(data["backup_id"]),
                str(data["cluster"]),
                str(data["spec_digest"]),
                str(data["proton_version"]),
                str(data["region"]),
                str(data["created_at"]),
                nodes,
                int(data["format_version"]),
                tuple(str(n) for n in data.get("notes") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ByocError(f"{source}: not a byoc backup manifest ({type(exc).__name__}: {exc})") from exc


@dataclass(frozen=True)
class BackupInfo:
    """One backup as found in AWS: its manifest (if written) and its snapshots."""

    backup_id: str
    created: float  # unix time, from the backup id
    status: str  # complete | incomplete (no manifest) | damaged (snapshots missing)
    snapshot_ids: tuple[str, ...] = ()
    manifest: Manifest | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "created_at": _iso(self.created),
            "status": self.status,
            "snapshot_ids": list(self.snapshot_ids),
            "nodes": len(self.manifest.nodes) if self.manifest else None,
            "consistency": self.manifest.consistency if self.manifest else None,
            "manifest": f"{PREFIX}{self.backup_id}/manifest.json" if self.manifest else None,
            "problem": self.problem or None,
        }


@dataclass
class PruneResult:
    removed: list[str] = field(default_factory=list)
    deleted_snapshots: list[str] = field(default_factory=list)


def bucket_of(spec: Spec) -> str:
    return str(spec.data["storage"]["bucket_name"])


def manifest_key(backup_id: str) -> str:
    return f"{PREFIX}{backup_id}/manifest.json"


def new_backup_id(cluster: str, now: float) -> str:
    return f"backup-{cluster}-{int(now)}"


def created_of(backup_id: str) -> float:
    """The unix time in a backup id (0 when it has none)."""
    tail = backup_id.rsplit("-", 1)[-1]
    return float(tail) if tail.isdigit() else 0.0


def take_backup(
    ctx: AwsContext,
    spec: Spec,
    *,
    clock: Callable[[], float] = time.time,
    crash_consistent: bool = False,
    allow_crash_consistent: bool = False,
    freeze_timeout: int = DEFAULT_FREEZE_TIMEOUT,
    monotonic: Callable[[], float] = time.monotonic,
) -> Manifest:
    """Snapshot every node's data volume, wait until all are complete, then write the manifest.

    Application-consistent by default: every node's data filesystem is frozen through SSM (all nodes
    at once, so the snapshots share one point in time), the snapshots are started, and the nodes are
    thawed at once (each also thaws itself after ``freeze_timeout`` seconds). A node that cannot be
    frozen fails the backup before any snapshot is taken, unless ``allow_crash_consistent`` (then its
    snapshot is recorded as ``crash``). ``crash_consistent`` freezes nothing and sends no SSM command.
    """
    from byoc.resources.ebs_volume import KIND as VOLUMES
    from byoc.resources.volume_attachment import KIND as ATTACHMENTS

    if not MIN_FREEZE_TIMEOUT <= freeze_timeout <= MAX_FREEZE_TIMEOUT:
        raise ByocError(f"the freeze timeout is {freeze_timeout} s; give {MIN_FREEZE_TIMEOUT} to "
                        f"{MAX_FREEZE_TIMEOUT} seconds")
    now = clock()
    backup_id = new_backup_id(spec.cluster_name, now)
    try:
        # the nodes' data volumes (a volume tagged for the cluster without an address is unmanaged)
        volumes = [v for v in VOLUMES.discover(ctx) if parse_address(v.address)[1] == "data"]
        attached = {x.props["volume_id"]: str(x.props["instance_id"]) for x in ATTACHMENTS.discover(ctx)}
    except Exception as exc:
        raise to_cloud_error(exc) from exc
    if not volumes:
        raise ByocError(
            f"cluster {spec.cluster_name} has no data volumes to back up in {spec.region}; "
            "run `byoc apply` first"
        )
    volumes.sort(key=lambda v: _node_order(_key(v.address)))
    targets = {_key(v.address): attached[v.id] for v in volumes if v.id in attached}
    unattached = {
        _key(v.address): f"node {_key(v.address)}: its data volume {v.id} is attached to no instance "
        "(nothing to freeze it on)" for v in volumes if v.id not in attached
    }
    started: dict[str, tuple[Any, str, str]] = {}
    notes: list[str] = []
    late: dict[str, str] = {}
    try:
        with _consistency(ctx, targets, backup_id, crash_consistent, allow_crash_consistent,
                          freeze_timeout, unattached, monotonic) as fz:
            for vol in volumes:
                key = _key(vol.address)
                sid = create_snapshot(
                    ctx,
                    vol.id,
                    description=f"byoc backup {backup_id} of {vol.address} ({vol.id})",
                    tags={BACKUP_TAG: backup_id, "Name": f"{backup_id}-{key}"},
                    address=vol.address,
                )
                kind = fz.consistency(key) if fz else CRASH
                if fz and kind == CRASH and key not in fz.problems:  # frozen, but past its time limit
                    fz.expired(key, f"the snapshot {sid} of node {key}")
                    late[key] = fz.problems[key]
                started[key] = (vol, sid, kind)
            if late and not allow_crash_consistent:
                raise frozen_failure(late, timeout_hint=True)
        if fz:
            notes = [f"not frozen, crash-consistent: {p}" for _, p in sorted(fz.problems.items())] + fz.notes
        sids = [sid for _, sid, _ in started.values()]
        done = wait_snapshots(ctx, sids, what=f"the snapshots of {backup_id}")
        nodes = {
            key: BackupNode(
                vol.address,
                attached.get(vol.id),
                vol.id,
                sid,
                done[sid].size_gb or int(vol.props["size"]),
                str(vol.props["availability_zone"]),
                kind,
            )
            for key, (vol, sid, kind) in started.items()
        }
        manifest = Manifest(
            backup_id,
            spec.cluster_name,
            spec.digest,
            str(spec.data["cluster"]["proton_version"]),
            spec.region,
            _iso(now),
            nodes,
            notes=tuple(notes),
        )
        body = json.dumps(manifest.to_dict(), indent=2, sort_keys=True).encode()
        _s3(
            ctx,
            spec,
            "put_object",
            manifest_key(backup_id),
            lambda s3, b: s3.put_object(
                Bucket=b, Key=manifest_key(backup_id), Body=body, ContentType="application/json"
            ),
        )
    except Exception as exc:
        # a failure byoc sees (not a crash): the snapshots taken so far are of no use without
        # a manifest, so they go; if they cannot, `byoc backups prune` removes them later
        err = exc if isinstance(exc, ByocError) else to_cloud_error(exc)
        err.args = (f"{err}\n{_discard(ctx, backup_id, [sid for _, sid, _ in started.values()])}",)
        if err is exc:
            raise
        raise err from exc
    return manifest


def _consistency(
    ctx: AwsContext,
    targets: Mapping[str, str],
    backup_id: str,
    crash_consistent: bool,
    allow_crash: bool,
    limit: int,
    unattached: Mapping[str, str],
    monotonic: Callable[[], float],
) -> AbstractContextManager[Freeze | None]:
    """The nodes frozen for the snapshots (``byoc.operations.fsfreeze.frozen``), or nothing at all."""
    if crash_consistent:
        return nullcontext(None)
    return frozen(ctx, targets, backup_id, limit=limit, allow_crash=allow_crash, unattached=unattached,
                  monotonic=monotonic)


def consistency_of(kinds: Iterable[str]) -> str:
    """``application``/``crash`` when all are that kind, ``mixed`` otherwise."""
    found = set(kinds)
    return found.pop() if len(found) == 1 else ("mixed" if found else CRASH)


def _discard(ctx: AwsContext, backup_id: str, snapshot_ids: list[str]) -> str:
    """Delete the snapshots of a failed backup; says what happened to them."""
    if not snapshot_ids:
        return f"Backup {backup_id} was not taken."
    try:
        delete_snapshots(ctx, snapshot_ids)
    except ByocError as exc:
        return (
            f"Backup {backup_id} is incomplete; deleting its snapshots failed too ({exc}): "
            "`byoc backups prune` removes them."
        )
    return f"Backup {backup_id} was not taken; its {len(snapshot_ids)} snapshot(s) were deleted."


def read_manifest(ctx: AwsContext, spec: Spec, backup_id: str) -> Manifest:
    key = manifest_key(backup_id)
    where = f"s3://{bucket_of(spec)}/{key}"
    try:
        body = _s3(
            ctx, spec, "get_object", key, lambda s3, b: s3.get_object(Bucket=b, Key=key)["Body"].read()
        )
    except CloudError as exc:
        if exc.code in {"NoSuchKey", "404", "NoSuchBucket"}:
            raise ByocError(
                f"no backup {backup_id!r} in cluster {spec.cluster_name}: {where} does not exist; "
                "`byoc backups list` shows the backups there are"
            ) from None
        raise
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ByocError(f"{where}: not a byoc backup manifest (invalid JSON: {exc})") from exc
    return Manifest.from_dict(data, source=where)


def list_backups(ctx: AwsContext, spec: Spec) -> list[BackupInfo]:
    """Every backup of the cluster, oldest first: manifests in the bucket and tagged snapshots."""
    snapshots = backup_snapshots(ctx)
    by_id: dict[str, list[str]] = {}
    for sid, bid in snapshots.items():
        by_id.setdefault(bid, []).append(sid)
    manifests = {bid: read_manifest(ctx, spec, bid) for bid in _manifest_ids(ctx, spec)}
    out = []
    for bid in sorted(set(by_id) | set(manifests), key=lambda b: (created_of(b), b)):
        sids = tuple(sorted(by_id.get(bid, ())))
        m = manifests.get(bid)
        if m is None:
            out.append(
                BackupInfo(
                    bid,
                    created_of(bid),
                    INCOMPLETE,
                    sids,
                    None,
                    "snapshots without a manifest: the backup was interrupted",
                )
            )
            continue
        missing = sorted({n.snapshot_id for n in m.nodes.values()} - set(sids))
        status, problem = (
            (DAMAGED, f"snapshot(s) {', '.join(missing)} no longer exist") if missing else (COMPLETE, "")
        )
        out.append(BackupInfo(bid, created_of(bid), status, sids, m, problem))
    return out


def prune_candidates(backups: Sequence[BackupInfo], retention_days: int, now: float) -> list[BackupInfo]:
    """Backups older than the retention, and every incomplete one (a backup that was interrupted)."""
    cutoff = now - retention_days * 86400
    return [b for b in backups if b.status == INCOMPLETE or b.created < cutoff]


def delete_backups(ctx: AwsContext, spec: Spec, backups: Iterable[BackupInfo]) -> PruneResult:
    """Delete each backup's snapshots, then every version of its manifest."""
    result = PruneResult()
    for b in backups:
        result.deleted_snapshots += delete_snapshots(ctx, b.snapshot_ids)
        if b.manifest is not None:
            _delete_versions(ctx, spec, manifest_key(b.backup_id))
        result.removed.append(b.backup_id)
    return result


def delete_snapshots(ctx: AwsContext, snapshot_ids: Iterable[str]) -> list[str]:
    """Delete snapshots (one already gone counts as deleted); returns their ids."""
    ec2 = ctx.client("ec2")
    done = []
    for sid in snapshot_ids:
        try:
            ctx.retry(
                partial(ec2.delete_snapshot, SnapshotId=sid),
                codes={"InvalidSnapshot.InUse"},
                timeout=min(ctx.retry_timeout, 120.0),
            )
        except Exception as exc:
            if error_code(exc) != "InvalidSnapshot.NotFound":
                raise to_cloud_error(exc, None, sid) from exc
        done.append(sid)
    return done


def backup_snapshots(ctx: AwsContext) -> dict[str, str]:
    """snapshot id → backup id of every backup snapshot of the cluster (by tag, in one paginated call)."""
    filters = [
        {"Name": f"tag:{CLUSTER_TAG}", "Values": [ctx.cluster]},
        {"Name": "tag-key", "Values": [BACKUP_TAG]},
    ]
    try:
        pages = (
            ctx.client("ec2").get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters)
        )
        found = [s for page in pages for s in page["Snapshots"]]
    except Exception as exc:
        raise to_cloud_error(exc) from exc
    out = {}
    for s in found:
        tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        if tags.get(CLUSTER_TAG) == ctx.cluster and tags.get(BACKUP_TAG):
            out[str(s["SnapshotId"])] = tags[BACKUP_TAG]
    return out


def _manifest_ids(ctx: AwsContext, spec: Spec) -> list[str]:
    def run(s3: Any, bucket: str) -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return [k[len(PREFIX) : -len("/manifest.json")] for k in keys if k.endswith("/manifest.json")]

    try:
        return list(_s3(ctx, spec, "list_objects_v2", PREFIX, run))
    except CloudError as exc:
        if exc.code == "NoSuchBucket":
            return []
        raise


def _delete_versions(ctx: AwsContext, spec: Spec, key: str) -> None:
    def run(s3: Any, bucket: str) -> None:
        out = s3.list_object_versions(Bucket=bucket, Prefix=key)
        objs = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in out.get("Versions", []) + out.get("DeleteMarkers", [])
            if v["Key"] == key
        ]
        if objs:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})

    _s3(ctx, spec, "delete_objects", key, run)


def _s3(ctx: AwsContext, spec: Spec, op: str, key: str, call: Callable[[Any, str], Any]) -> Any:
    """One S3 call on the cluster's bucket; an AccessDenied names the bucket policy's TLS rule."""
    bucket = bucket_of(spec)
    try:
        return call(ctx.client("s3"), bucket)
    except Exception as exc:
        err = to_cloud_error(exc, "aws_s3_bucket.data", f"s3://{bucket}/{key}")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        if error_code(exc) in {"AccessDenied", "403"} and endpoint.startswith("http://"):
            err = CloudError(
                f"{op} on s3://{bucket}/{key} was denied: the bucket's policy denies every request not made "
                f"over TLS (aws:SecureTransport), and AWS_ENDPOINT_URL ({endpoint}) is plain HTTP. Use the "
                "endpoint's https:// address (`byoc sandbox start` prints one, with AWS_CA_BUNDLE).",
                address="aws_s3_bucket.data",
                aws_id=bucket,
                code=err.code,
            )
        raise err from exc


def _key(address: str) -> str:
    return parse_address(address)[2] or ""


def _node_order(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 30, key)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
