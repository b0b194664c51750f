"""Backups on moto: snapshots of every data volume, a manifest in S3, listing, an interrupted
backup shown as incomplete, pruning by retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from byoc.operations.backup import (
    COMPLETE,
    INCOMPLETE,
    delete_backups,
    list_backups,
    manifest_key,
    prune_candidates,
    take_backup,
)
from byoc.resources._snapshots import BACKUP_TAG
from tests.daytwo import applied

T0 = 1_700_000_000.0


def test_backup_snapshots_every_volume_and_writes_the_manifest(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    ctx, spec = eng.ctx, eng.spec
    m = take_backup(ctx, spec, clock=lambda: T0)
    assert m.backup_id == f"backup-dev-proton-{int(T0)}" and set(m.nodes) == {"0", "1"}
    state = eng.state()
    assert state is not None
    ec2 = ctx.client("ec2")
    for key, node in m.nodes.items():
        vol = state.resources[f'aws_ebs_volume.data["{key}"]']
        assert (node.volume_id, node.availability_zone, node.size_gb) == (
            vol.id,
            vol.props["availability_zone"],
            20,
        )
        assert node.instance_id == state.resources[f'aws_instance.node["{key}"]'].id
        (snap,) = ec2.describe_snapshots(SnapshotIds=[node.snapshot_id])["Snapshots"]
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert snap["State"] == "completed" and snap["VolumeId"] == vol.id
        assert tags[BACKUP_TAG] == m.backup_id and tags["byoc:cluster"] == "dev-proton"
    body = ctx.client("s3").get_object(Bucket="dev-proton-data-byoc-example", Key=manifest_key(m.backup_id))
    stored = json.loads(body["Body"].read())
    assert stored["format_version"] == 1 and stored["spec_digest"] == spec.digest
    assert stored["proton_version"] == "1.6.16" and stored["region"] == "us-west-2"
    assert stored["nodes"]["1"]["snapshot_id"] == m.nodes["1"].snapshot_id
    (info,) = list_backups(ctx, spec)
    assert info.status == COMPLETE and set(info.snapshot_ids) == {n.snapshot_id for n in m.nodes.values()}


def test_an_interrupted_backup_is_listed_incomplete_and_pruned_with_old_ones(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch, count=1)
    ctx, spec = eng.ctx, eng.spec
    old = take_backup(ctx, spec, clock=lambda: T0)
    new = take_backup(ctx, spec, clock=lambda: T0 + 6 * 86400)

    def crash(**kw: Any) -> None:
        raise KeyboardInterrupt  # interrupted after the snapshots, before the manifest

    ctx.client("s3").meta.events.register_first("before-call.s3.PutObject", crash)
    with pytest.raises(KeyboardInterrupt):
        take_backup(ctx, spec, clock=lambda: T0 + 7 * 86400)
    ctx.client("s3").meta.events.unregister("before-call.s3.PutObject", crash)
    found = {b.backup_id: b for b in list_backups(ctx, spec)}
    crashed = found[f"backup-dev-proton-{int(T0) + 7 * 86400}"]
    assert crashed.status == INCOMPLETE and crashed.manifest is None and len(crashed.snapshot_ids) == 1
    assert found[new.backup_id].status == COMPLETE

    doomed = prune_candidates(list(found.values()), retention_days=7, now=T0 + 8 * 86400)
    assert {b.backup_id for b in doomed} == {old.backup_id, crashed.backup_id}
    result = delete_backups(ctx, spec, doomed)
    assert sorted(result.removed) == sorted(b.backup_id for b in doomed)
    (left,) = list_backups(ctx, spec)
    assert left.backup_id == new.backup_id and left.status == COMPLETE
    s3 = ctx.client("s3")
    versions = s3.list_object_versions(
        Bucket="dev-proton-data-byoc-example", Prefix=manifest_key(old.backup_id)
    )
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    assert (
        ctx.client("ec2").describe_snapshots(
            Filters=[{"Name": "tag:" + BACKUP_TAG, "Values": [old.backup_id]}]
        )["Snapshots"]
        == []
    )
