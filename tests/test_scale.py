"""`byoc scale` on moto: 3 → 5 → 2 nodes (new nodes in the next AZs; a final snapshot of each of
the three removed nodes' volumes, taken after draining and recorded), the spec file edited in
place, and the count validated like any --set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.cli import main
from byoc.engine import Engine
from byoc.errors import ByocError, SpecError
from byoc.operations.scale import apply_scale, plan_scale, refuse_replaced_data, scaled_spec
from byoc.plan import DELETE, REPLACE, Change, Plan
from byoc.rolling import node_of
from byoc.spec import load_spec
from byoc.spec.edit import SpecEditError, set_scalar
from byoc.state import LocalBackend
from tests.awsrealism import TargetHealth, free_eips_of_deleted_nat_gateways, record_calls
from tests.daytwo import AMI, DEV, quiet_ctx

COUNT_LINE = "  instance_count: 1\n"


def spec_file(tmp_path: Path, count: int) -> Path:
    text = DEV.read_text()
    assert text.count(COUNT_LINE) == 1
    path = tmp_path / "dev.yaml"
    path.write_text(text.replace(COUNT_LINE, f"  instance_count: {count}   # nodes\n"))
    return path


@pytest.fixture
def world(moto: None, tmp_path: Path) -> Iterator[tuple[AwsContext, LocalBackend, Path]]:
    path = spec_file(tmp_path, 3)
    spec = load_spec(str(path))
    ctx = quiet_ctx(spec)
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    yield ctx, LocalBackend(tmp_path / "state", spec.cluster_name), path


def engine_for(ctx: AwsContext, backend: LocalBackend, path: Path) -> Engine:
    return Engine(load_spec(str(path)), ctx=ctx, backend=backend, ami_resolver=lambda itype: AMI)


def _azs(ctx: AwsContext) -> dict[str, str]:
    """node key -> AZ of its running instance."""
    out = {}
    for r in ctx.client("ec2").describe_instances()["Reservations"]:
        for i in r["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", ())}
            if i["State"]["Name"] == "running" and "byoc:address" in tags:
                out[node_of(tags["byoc:address"]) or ""] = i["Placement"]["AvailabilityZone"]
    return out


def test_scale_3_to_5_to_2(world: tuple[AwsContext, LocalBackend, Path], capsys: Any,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, backend, path = world
    health = TargetHealth(ctx.client("elbv2"), draining=3, initial=0)
    eng = engine_for(ctx, backend, path)
    assert eng.apply(eng.plan()).ok

    up = plan_scale(eng, 5)
    assert (up.current, up.added, up.removed) == (3, ("3", "4"), ())
    assert up.plan.counts()["destroy"] == 0
    done = apply_scale(up)
    assert done.result.ok, [str(f.error) for f in done.result.failures]
    assert _azs(ctx) == {"0": "us-west-2a", "1": "us-west-2b", "2": "us-west-2a",
                         "3": "us-west-2b", "4": "us-west-2a"}
    assert done.spec_warning is None and done.spec_line is not None
    assert "  instance_count: 5   # nodes\n" in path.read_text()
    assert path.read_text().splitlines()[done.spec_line - 1] == "  instance_count: 5   # nodes"
    assert path.read_text().startswith("# yaml-language-server")  # comments kept
    assert not engine_for(ctx, backend, path).plan().has_changes

    # 5 → 2 through the CLI, on this moto and state
    eng5 = engine_for(ctx, backend, path)
    down = plan_scale(eng5, 2)
    assert down.removed == ("2", "3", "4")
    volumes = {c.address: c.prior_id for c in down.plan.changes
               if c.kind == "aws_ebs_volume" and c.action == DELETE}
    assert len(volumes) == 3 and all(c.final_snapshot for c in down.plan.changes
                                     if c.address in volumes)
    monkeypatch.setattr("byoc.cli.scale._engine", lambda s, par, adopt=False: Engine(
        s, ctx=ctx, backend=backend, ami_resolver=lambda itype: AMI, adopt=adopt))
    calls = record_calls(ctx, "ec2", "elbv2")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["scale", str(path), "--count", "2", "--auto-approve", "--skip-preflight", "--no-color"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), out + err

    state = backend.read()
    assert state is not None
    recorded = {r["address"]: (r["volume_id"], r["snapshot_id"]) for r in state.final_snapshots}
    assert set(recorded) == set(volumes)
    ec2 = ctx.client("ec2")
    for address, (volume_id, snapshot_id) in recorded.items():
        assert volume_id == volumes[address]
        assert f"Final snapshot of {address}: {snapshot_id}" in out
        (snap,) = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        assert snap["VolumeId"] == volume_id and snap["State"] == "completed"
        assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"] == []
    assert sorted(_azs(ctx)) == ["0", "1"]
    assert f"Updated {path}:" in out and "instance_count: 2" in out
    assert "  instance_count: 2   # nodes\n" in path.read_text()

    # draining was waited out before each removed instance was stopped and terminated
    drained_at = {}
    for i, (action, params, parsed) in enumerate(calls):
        if action == "DescribeTargetHealth":
            for d in parsed["TargetHealthDescriptions"]:
                if d["TargetHealth"]["State"] == "draining":
                    drained_at[d["Target"]["Id"]] = i
        if action in ("StopInstances", "TerminateInstances"):
            (gone,) = params["InstanceIds"]
            assert gone in drained_at and drained_at[gone] < i, f"{action} {gone} while draining"
    assert len({iid for iid in health.drained}) == 3


def test_the_count_is_validated_like_any_set(tmp_path: Path) -> None:
    spec = load_spec(str(spec_file(tmp_path, 3)))
    assert scaled_spec(spec, 7).instance_count == 7
    for bad in (0, 51):
        with pytest.raises(SpecError) as exc:
            scaled_spec(spec, bad)
        assert f"compute.instance_count={bad}" in "\n".join(exc.value.issues)
    # an override of the count (the Python API's) is replaced, other overrides are kept
    over = load_spec(str(spec_file(tmp_path, 3)), ["compute.instance_count=2", "compute.disk_size_gb=200"])
    again = scaled_spec(over, 4)
    assert again.instance_count == 4 and again.data["compute"]["disk_size_gb"] == 200


def test_cli_refuses_a_set_of_the_count(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = spec_file(tmp_path, 3)
    with pytest.raises(SystemExit) as exc:
        main(["scale", str(path), "--count", "4", "--set", "compute.instance_count=2", "--auto-approve"])
    _, err = capsys.readouterr()
    assert exc.value.code == 1 and "--count" in err and not (tmp_path / "state").exists()


def test_cli_refuses_a_count_out_of_bounds(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = spec_file(tmp_path, 3)
    with pytest.raises(SystemExit) as exc:
        main(["scale", str(path), "--count", "0", "--auto-approve"])
    _, err = capsys.readouterr()
    assert exc.value.code == 1 and "instance_count" in err and "Traceback" not in err
    assert "instance_count: 3" in path.read_text()
    assert not (tmp_path / "state").exists()  # refused before the state was touched


def test_set_scalar_edits_one_value_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = "# head\ncompute:   # nodes\n  instance_type: t3.large\n  instance_count: 3 # three\n\nx: [1, 2]\n"
    path.write_text(text)
    assert set_scalar(path, ("compute", "instance_count"), 12) == 4
    assert path.read_text() == text.replace("instance_count: 3 #", "instance_count: 12 #")


@pytest.mark.parametrize("text", [
    "compute:\n  instance_type: t3.large\n",  # not written: the default
    "compute:\n  instance_count: '3'\n",  # quoted
    "base: &b\n  instance_count: 3\ncompute: *b\n",  # through an alias
])
def test_set_scalar_refuses_what_it_cannot_edit_in_place(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SpecEditError):
        set_scalar(path, ("compute", "instance_count"), 5)
    assert path.read_text() == text


def test_scale_refuses_a_plan_that_would_replace_a_kept_nodes_volume() -> None:
    kept = Change('aws_ebs_volume.data["0"]', "aws_ebs_volume", REPLACE, "availability_zone cannot be "
                  "changed in place", prior_id="vol-0", final_snapshot=True)
    gone = Change('aws_ebs_volume.data["4"]', "aws_ebs_volume", DELETE, "no longer in the spec",
                  prior_id="vol-4", final_snapshot=True)
    refuse_replaced_data(Plan("c", None, 0, "", "", (), (gone,)))
    with pytest.raises(ByocError) as exc:
        refuse_replaced_data(Plan("c", None, 0, "", "", (), (gone, kept)))
    assert 'aws_ebs_volume.data["0"] (vol-0): availability_zone' in str(exc.value)
