"""Restore on moto: a plan that replaces each data volume by one created from the backup's
snapshot (old volume snapshotted first, node stopped before its volume is detached), after which
a normal plan is empty; a manifest that does not fit is refused unless forced; a cluster with no
nodes left is restored too."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from byoc.errors import AdoptError, ByocError
from byoc.operations.backup import BackupNode, Manifest, take_backup
from byoc.operations.health import check_health
from byoc.operations.restore import check_manifest, plan_restore
from byoc.plan import REPLACE
from byoc.planner import PlanOptions
from byoc.render import render_plan
from tests.daytwo import applied, dev_spec, engine_for, quiet_ctx


def _record(ctx: Any, ops: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    ec2 = ctx.client("ec2")
    for op in ops:
        ec2.meta.events.register(
            f"provide-client-params.ec2.{op}", lambda op=op, **kw: calls.append((op, dict(kw["params"])))
        )
    return calls


def _attached(ctx: Any) -> dict[str, tuple[str, str | None]]:
    """volume id → (its snapshot, the instance it is attached to) for the cluster's data volumes."""
    vols = ctx.client("ec2").describe_volumes(Filters=[{"Name": "tag-key", "Values": ["byoc:address"]}])
    return {
        v["VolumeId"]: (v.get("SnapshotId") or "", next((a["InstanceId"] for a in v["Attachments"]), None))
        for v in vols["Volumes"]
    }


def test_restore_replaces_data_volumes_from_the_snapshots_and_the_next_plan_is_empty(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    ctx = eng.ctx
    backup = take_backup(ctx, eng.spec)
    before = eng.state()
    assert before is not None
    old_volumes = {k: before.resources[f'aws_ebs_volume.data["{k}"]'].id for k in ("0", "1")}

    plan, points = plan_restore(eng, backup.backup_id)
    assert points.points == {k: (n.snapshot_id, n.availability_zone) for k, n in backup.nodes.items()}
    for k in ("0", "1"):
        c = plan.change(f'aws_ebs_volume.data["{k}"]')
        assert (
            c.action == REPLACE and c.final_snapshot and c.after["snapshot_id"] == backup.nodes[k].snapshot_id
        )
    text = render_plan(plan)
    assert "-/+" in text and backup.nodes["0"].snapshot_id in text
    assert plan.rolling == ("0", "1")  # one node out of service at a time

    calls = _record(
        ctx,
        ("StopInstances", "DetachVolume", "CreateSnapshot", "DeleteVolume", "CreateVolume", "AttachVolume"),
    )
    result = eng.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    after = eng.state()
    assert after is not None
    # the old volumes were snapshotted, recorded and reported
    assert set(result.snapshots) == {f'aws_ebs_volume.data["{k}"]' for k in ("0", "1")}
    assert {r["volume_id"] for r in after.final_snapshots} == set(old_volumes.values())
    # each node's new data volume comes from its snapshot and is attached to that node
    live = _attached(ctx)
    for k, node in backup.nodes.items():
        vol = after.resources[f'aws_ebs_volume.data["{k}"]']
        assert vol.id != old_volumes[k] and vol.props["snapshot_id"] == node.snapshot_id
        assert live[vol.id] == (node.snapshot_id, after.resources[f'aws_instance.node["{k}"]'].id)
    for vid in old_volumes.values():
        assert vid not in live
    # each old volume: its instance stopped, then detached, then snapshotted, then deleted
    for k, vid in old_volumes.items():
        instance = before.resources[f'aws_instance.node["{k}"]'].id
        order = [
            i
            for i, (op, p) in enumerate(calls)
            if (op == "StopInstances" and p["InstanceIds"] == [instance])
            or (op in {"DetachVolume", "CreateSnapshot", "DeleteVolume"} and p["VolumeId"] == vid)
        ]
        assert [calls[i][0] for i in order] == [
            "StopInstances",
            "DetachVolume",
            "CreateSnapshot",
            "DeleteVolume",
        ]
    assert not eng.plan().actionable  # the restored volumes' snapshot is a create-time fact
    # the nodes run again, registered in every target group
    assert check_health(ctx, after, expected_nodes=2).status == "healthy"


def _manifest(**nodes: str) -> Manifest:
    return Manifest(
        "backup-dev-proton-1",
        "dev-proton",
        "x",
        "1.6.16",
        "us-west-2",
        "2026-01-01T00:00:00Z",
        {
            k: BackupNode(f'aws_ebs_volume.data["{k}"]', "i-1", "vol-1", f"snap-{k}", 20, az)
            for k, az in nodes.items()
        },
    )


def test_check_manifest_names_every_mismatch() -> None:
    spec = dev_spec(count=2)
    assert check_manifest(_manifest(**{"0": "us-west-2a", "1": "us-west-2b"}), spec, None) == []
    problems = check_manifest(
        dataclasses.replace(_manifest(**{"0": "us-west-2b"}), cluster="other"), spec, None
    )
    assert any("cluster 'other'" in p for p in problems)
    assert any("1 node(s), the spec has 2" in p for p in problems)
    assert any("no node 1" in p for p in problems)
    assert not any("node 0 was backed up" in p for p in problems)  # a new node goes to the backup's AZ
    problems = check_manifest(_manifest(**{"0": "us-west-2c", "1": "us-west-2b"}), spec, None)
    assert problems == [
        "node 0 was backed up in us-west-2c, it is in us-west-2a now "
        "(the volume is created there from the snapshot)"
    ]


def test_restore_is_refused_on_a_mismatch_unless_forced(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    backup = take_backup(eng.ctx, eng.spec)
    one = engine_for(dev_spec(count=1), eng.ctx, tmp_path)
    with pytest.raises(
        ByocError, match=r"(?s)does not match cluster dev-proton:\n.*2 node\(s\), the spec has 1.*--force"
    ):
        plan_restore(one, backup.backup_id)
    plan, points = plan_restore(one, backup.backup_id, force=True)
    assert points.points == {"0": (backup.nodes["0"].snapshot_id, "us-west-2a")} and points.ignored == ("1",)
    assert plan.change('aws_ebs_volume.data["0"]').action == REPLACE
    with pytest.raises(ByocError, match="no backup 'backup-dev-proton-9'"):
        plan_restore(eng, "backup-dev-proton-9")
    eng.ctx.client("ec2").delete_snapshot(SnapshotId=backup.nodes["1"].snapshot_id)
    with pytest.raises(ByocError, match=r"snapshot\(s\) snap-\w+ \(missing\)"):
        plan_restore(eng, backup.backup_id)


def test_restore_into_a_cluster_without_nodes(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    backup = take_backup(eng.ctx, eng.spec)
    # disaster: everything but the bucket is gone (the data volumes with a final snapshot)
    gone = eng.apply(eng.plan(PlanOptions(destroy=True, final_snapshots=True)))
    assert gone.ok and not _attached(eng.ctx)

    # a fresh checkout elsewhere (no state): the kept bucket is the deployed cluster's, so taking
    # it into a new state needs adopt (--adopt)
    fresh = engine_for(eng.spec, quiet_ctx(eng.spec), tmp_path / "elsewhere")
    with pytest.raises(AdoptError, match=r"already deployed.*aws_s3_bucket\.data.*--adopt"):
        plan_restore(fresh, backup.backup_id)
    fresh.adopt = True
    plan, _ = plan_restore(fresh, backup.backup_id)
    assert plan.change('aws_ebs_volume.data["1"]').after["snapshot_id"] == backup.nodes["1"].snapshot_id
    result = fresh.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    state = fresh.state()
    assert state is not None
    live = _attached(eng.ctx)
    for k, node in backup.nodes.items():
        vol = state.resources[f'aws_ebs_volume.data["{k}"]']
        assert live[vol.id] == (node.snapshot_id, state.resources[f'aws_instance.node["{k}"]'].id)
        assert vol.props["availability_zone"] == node.availability_zone
    assert not fresh.plan().actionable
