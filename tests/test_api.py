"""The Python API end to end on moto: byoc.Cluster apply → health → backup → restore → destroy,
from a spec file and from a dict; errors from the byoc.errors tree; the lock is taken."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import byoc
from byoc.aws.context import AwsContext
from byoc.errors import ApplyError, ByocError, LockError, SpecError
from byoc.state import LocalBackend, State
from tests.awsrealism import https_bucket_policies
from tests.daytwo import AMI, DEV


def _options(tmp_path: Path) -> dict[str, object]:
    return {
        "ctx": AwsContext(cluster="dev-proton", region="us-west-2", sleep=lambda s: None, poll_delay=0.01),
        "backend": LocalBackend(tmp_path, "dev-proton"),
        "ami_resolver": lambda itype: AMI,
    }


def test_cluster_apply_backup_restore_destroy(
    moto: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    https_bucket_policies(monkeypatch)
    c = byoc.Cluster.from_spec(DEV, overrides=["compute.instance_count=2"], **_options(tmp_path))
    assert c.name == "dev-proton" and c.plan().counts()["add"] > 40
    result = c.apply()
    assert result.ok and not c.plan().has_changes
    assert c.health().status == "healthy"

    backup = c.backup()
    assert backup.consistency == "application"  # moto's SSM answered the freeze "Success"
    (listed,) = c.backups()
    assert listed.backup_id == backup.backup_id and listed.status == "complete"
    restored = c.restore(backup.backup_id)
    assert set(restored.snapshots) == {'aws_ebs_volume.data["0"]', 'aws_ebs_volume.data["1"]'}
    state = c.engine.state()
    assert state is not None
    assert state.resources['aws_ebs_volume.data["1"]'].props["snapshot_id"] == backup.nodes["1"].snapshot_id
    assert not c.plan().has_changes

    assert c.drift().in_sync
    logs = c.engine.ctx.client("logs")
    logs.put_retention_policy(logGroupName="/aws/proton/dev-proton", retentionInDays=1)
    report = c.drift()
    assert not report.in_sync
    assert [r.address for r in report.resources] == ["aws_cloudwatch_log_group.main"]

    scaled = c.scale(1)  # the count came from an override: the spec file stays as it is
    assert scaled.result.ok and scaled.spec_line is None
    assert set(scaled.snapshots) == {'aws_ebs_volume.data["1"]'}
    assert c.spec.instance_count == 1 and DEV.read_text().count("instance_count: 1") == 1
    assert not c.plan().has_changes  # the scale apply repaired the drift too

    assert c.prune_backups(now=0).removed == []  # nothing older than the retention
    with c.engine.backend.lock("someone else"), pytest.raises(LockError):
        c.backup()
    with pytest.raises(ByocError, match="no backup 'backup-dev-proton-1'"):
        c.restore("backup-dev-proton-1")

    gone = c.destroy()
    assert gone.ok
    assert c.plan(destroy=True).refused  # the bucket and the data volumes are kept


def test_cluster_from_dict_and_a_failed_apply_raises_apply_error(moto: None, tmp_path: Path) -> None:
    data = yaml.safe_load(DEV.read_text())
    c = byoc.Cluster.from_dict(data, name="inline", **_options(tmp_path))
    plan = c.plan()
    assert plan.spec_source == "inline"
    text = c.plan_json(plan)  # the CLI's JSON: one line, the provider's shapes, companions
    assert text.count("\n") == 1 and '"type":"aws_s3_bucket_public_access_block"' in text
    assert c.plan_json(plan, pretty=True).count("\n") > 100
    with pytest.raises(SpecError, match="instance_count"):
        byoc.Cluster.from_dict(data, name="inline", overrides=["compute.instance_count=0"])

    ec2 = c.engine.ctx.client("ec2")

    def refuse(**kw: object) -> None:
        raise RuntimeError("injected: RunInstances refused")

    ec2.meta.events.register_first("before-call.ec2.RunInstances", refuse)
    with pytest.raises(ApplyError, match=r"apply of cluster dev-proton did not complete.*injected") as info:
        c.apply()
    assert info.value.result.failures and not info.value.result.ok


def test_cluster_cancel_stops_an_apply_after_the_work_in_flight(moto: None, tmp_path: Path) -> None:
    """Setting ``Cluster.cancel`` (here when the VPC's create is recorded) lets what runs finish and
    be recorded, starts nothing more, and raises ApplyError saying it was interrupted."""
    c = byoc.Cluster.from_dict(yaml.safe_load(DEV.read_text()), name="inline", **_options(tmp_path))
    backend = c.engine.backend
    write = backend.write

    def write_then_cancel(state: State) -> None:
        write(state)
        if "aws_vpc.main" in state.resources:
            c.cancel.set()

    backend.write = write_then_cancel  # type: ignore[method-assign]
    with pytest.raises(ApplyError, match="apply of cluster dev-proton did not complete: interrupted") as info:
        c.apply()
    result = info.value.result
    assert result.cancelled and not result.failures
    recorded = set(LocalBackend(tmp_path, "dev-proton").read().resources)  # type: ignore[union-attr]
    assert "aws_vpc.main" in recorded and 'aws_subnet.private["us-west-2a"]' not in recorded
