"""Final snapshots: a data volume byoc deletes (scale-down, restore) is snapshotted first."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.errors import PlanError
from byoc.executor import Executor
from byoc.model import Live
from byoc.plan import DELETE, REPLACE, Change, Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.resources import registry
from byoc.resources._snapshots import FINAL_SNAPSHOT_TAG, wait_snapshots
from byoc.resources.ebs_volume import KIND
from byoc.rolling import node_of
from byoc.state.model import ResourceState, State
from byoc.toolbox import final_snapshots
from tests.resources.test_ebs_volume import ADDR, on, props

RULES = rules_of(registry())
BUCKET = "aws_s3_bucket.data"


def _volume_live(volume_id: str = "vol-1", az: str = "us-west-2a") -> Live:
    return Live(ADDR, "aws_ebs_volume", volume_id, props(availability_zone=az))


def _state_of(*lives: Live) -> State:
    state = State.new("test")
    for x in lives:
        state = state.with_resource(ResourceState(x.address, x.kind, x.id, x.props))
    return state


def test_scale_down_deletes_a_data_volume_only_with_final_snapshots_and_never_the_bucket() -> None:
    vol = _volume_live()
    bucket = Live(BUCKET, "aws_s3_bucket", "b", {"bucket": "b"})
    live = {vol.address: vol, bucket.address: bucket}
    kept = make_plan([], _state_of(vol, bucket), live, RULES, cluster="test")
    assert not kept.actionable and len(kept.refused) == 2

    p = make_plan([], _state_of(vol, bucket), live, RULES, cluster="test",
                  options=PlanOptions(final_snapshots=True))
    (c,) = p.actionable
    assert (c.address, c.action, c.final_snapshot) == (ADDR, DELETE, True)
    assert "final snapshot" in c.reason
    assert [r for r in p.refused if r.startswith(BUCKET)]
    # the flag survives the plan file
    assert Plan.from_dict(p.to_dict()).change(ADDR).final_snapshot is True


def test_a_data_volume_replaced_with_final_snapshots_is_marked_and_without_is_refused() -> None:
    vol = _volume_live()
    from byoc.model import Resource

    wanted = Resource(ADDR, "aws_ebs_volume", props(snapshot_id="snap-0123"), protected=True)
    with pytest.raises(PlanError, match="snapshot_id cannot change in place"):
        make_plan([wanted], _state_of(vol), {ADDR: vol}, RULES, cluster="test")
    p = make_plan([wanted], _state_of(vol), {ADDR: vol}, RULES, cluster="test",
                  options=PlanOptions(final_snapshots=True))
    c = p.change(ADDR)
    assert (c.action, c.final_snapshot) == (REPLACE, True) and not p.refused
    # an explicit --include-data means no snapshot is wanted
    q = make_plan([wanted], _state_of(vol), {ADDR: vol}, RULES, cluster="test",
                  options=PlanOptions(final_snapshots=True, allow_data_loss=True))
    assert (q.change(ADDR).action, q.change(ADDR).final_snapshot) == (REPLACE, False)


def _delete_plan(live: Live) -> Plan:
    return make_plan([], _state_of(live), {live.address: live}, RULES, cluster="test",
                     options=PlanOptions(final_snapshots=True))


def test_executor_snapshots_then_deletes_and_records_the_snapshot(ctx: AwsContext) -> None:
    vol = KIND.create(ctx, ADDR, props())
    saved: list[State] = []
    ex = Executor(registry(), ctx, _state_of(vol), saved.append)
    result = ex.run(_delete_plan(vol))
    assert result.ok, result.failures
    assert result.done == [ADDR]  # the snapshot is half of the delete, not a second resource done
    sid = result.snapshots[ADDR]
    ec2 = ctx.client("ec2")
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol.id]}])["Volumes"] == []
    (snap,) = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"]
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert snap["VolumeId"] == vol.id and snap["State"] == "completed"
    assert tags[FINAL_SNAPSHOT_TAG] == ADDR and tags["byoc:cluster"] == "test"
    assert "byoc:address" not in tags  # a snapshot is not a managed resource
    final = result.state
    assert ADDR not in final.resources
    assert [(r["address"], r["volume_id"], r["snapshot_id"]) for r in final.final_snapshots] == [
        (ADDR, vol.id, sid)]
    assert State.from_dict(final.to_dict()).final_snapshots == final.final_snapshots


def test_a_failed_snapshot_keeps_the_volume(ctx: AwsContext) -> None:
    vol = KIND.create(ctx, ADDR, props())

    def fail(parsed: dict[str, Any], **kw: Any) -> None:
        for s in parsed.get("Snapshots", []):
            s["State"], s["StateMessage"] = "error", "injected: KMS key disabled"

    on(ctx, "after-call.ec2.DescribeSnapshots", fail)
    result = Executor(registry(), ctx, _state_of(vol), lambda s: None).run(_delete_plan(vol))
    (failure,) = result.failures
    assert "KMS key disabled" in str(failure.error) and failure.address == ADDR
    assert not result.snapshots
    assert ctx.client("ec2").describe_volumes(VolumeIds=[vol.id])["Volumes"]


def test_wait_snapshots_polls_until_pending_ones_complete(ctx: AwsContext) -> None:
    vol = KIND.create(ctx, ADDR, props())
    sid = ctx.client("ec2").create_snapshot(VolumeId=vol.id)["SnapshotId"]
    answers: list[int] = []

    def pending(parsed: dict[str, Any], **kw: Any) -> None:
        answers.append(1)
        if len(answers) <= 2:
            for s in parsed.get("Snapshots", []):
                s["State"] = "pending"

    on(ctx, "after-call.ec2.DescribeSnapshots", pending)
    found = wait_snapshots(ctx, [sid])
    assert found[sid].state == "completed" and found[sid].volume_id == vol.id and len(answers) == 3


def test_a_change_without_the_flag_is_not_snapshotted() -> None:
    c = Change(ADDR, "aws_ebs_volume", DELETE, "x", prior_id="vol-1")
    assert c.final_snapshot is False and Change.from_dict(c.to_dict()).final_snapshot is False


def test_kinds_without_snapshots_refuse_to_snapshot(ctx: AwsContext) -> None:
    with pytest.raises(NotImplementedError):
        registry()["aws_s3_bucket"].snapshot(ctx, Live(BUCKET, "aws_s3_bucket", "b", {}))


class Killed(BaseException):
    """The process dies here (nothing after this point happens, what was saved stays)."""


@pytest.mark.parametrize("kill", ["after-create-snapshot", "before-delete", "after-delete", "none"])
def test_a_delete_killed_around_its_final_snapshot_leaves_no_duplicate_and_no_unrecorded_one(
    ctx: AwsContext, kill: str
) -> None:
    """Killed after CreateSnapshot answered, after the intent was saved but before DeleteVolume,
    or after the delete but before its state write: the run again reuses the snapshot (found by
    its tags), and the state records it exactly once."""
    vol = KIND.create(ctx, ADDR, props())
    saved = [_state_of(vol).bumped()]
    deleted: list[bool] = []

    def save(state: State) -> None:
        if kill == "after-delete" and deleted:
            raise Killed
        saved.append(state)

    def die(**kw: Any) -> None:
        raise Killed

    armed = {"after-create-snapshot": "after-call.ec2.CreateSnapshot",
             "before-delete": "before-call.ec2.DeleteVolume"}.get(kill)
    ec2 = ctx.client("ec2")
    if armed:
        ec2.meta.events.register_first(armed, die, unique_id="kill")
    ec2.meta.events.register("after-call.ec2.DeleteVolume", lambda **kw: deleted.append(True),
                             unique_id="deleted")
    with contextlib.suppress(Killed):
        Executor(registry(), ctx, saved[-1], save).run(_delete_plan(vol))
    if armed:
        ec2.meta.events.unregister(armed, unique_id="kill")
    # `byoc backups list --final` shows the snapshot, recorded or not, with its node
    (listed,) = final_snapshots(SimpleNamespace(state=lambda: saved[-1], ctx=ctx))  # type: ignore[arg-type]
    assert (listed["address"], listed["node"], listed["volume_id"], listed["in_aws"]) == (
        ADDR, node_of(ADDR), vol.id, True)
    assert listed["recorded"] is (kill != "after-create-snapshot")
    # the next run: plan against the last saved state and what AWS has now
    live = {ADDR: vol} if ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol.id]}])[
        "Volumes"] else {}
    state = saved[-1]
    plan = make_plan([], state, live, RULES, cluster="test", options=PlanOptions(final_snapshots=True))
    result = Executor(registry(), ctx, state, saved.append).run(plan)
    assert result.ok, result.failures
    snaps = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vol.id]}])["Snapshots"]
    assert len(snaps) == 1, "a second final snapshot was taken"
    tags = {t["Key"]: t["Value"] for t in snaps[0]["Tags"]}
    assert (tags[FINAL_SNAPSHOT_TAG], tags["byoc:volume-id"], tags["byoc:cluster"]) == (ADDR, vol.id, "test")
    final = result.state
    assert [(r["address"], r["volume_id"], r["snapshot_id"]) for r in final.final_snapshots] == [
        (ADDR, vol.id, snaps[0]["SnapshotId"])], "the final snapshot is not recorded exactly once"
    assert ADDR not in final.resources
    assert not ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol.id]}])["Volumes"]


def test_the_snapshot_is_in_the_state_before_the_delete_starts(ctx: AwsContext) -> None:
    vol = KIND.create(ctx, ADDR, props())
    saved: list[State] = []
    seen: list[tuple[str, ...]] = []

    def before_delete(**kw: Any) -> None:
        seen.append(tuple(r["snapshot_id"] for r in saved[-1].final_snapshots) if saved else ())

    ctx.client("ec2").meta.events.register_first("before-call.ec2.DeleteVolume", before_delete)
    result = Executor(registry(), ctx, _state_of(vol), saved.append).run(_delete_plan(vol))
    assert result.ok and seen == [(result.snapshots[ADDR],)]


def test_a_create_snapshot_answered_5xx_after_aws_started_it_is_found_not_taken_twice(moto: None) -> None:
    """CreateSnapshot is not repeated blindly after a 5xx (AWS may have started the snapshot): the
    final snapshot is looked for by its tags first, and the one AWS started is used."""
    from byoc.resources._snapshots import final_snapshots as in_aws
    from tests.faults import FaultInjector

    faults = FaultInjector(lose={"CreateSnapshot": 1})
    ctx = AwsContext(cluster="test", region="us-west-2", sleep=lambda d: None, poll_delay=0.01,
                     event_hooks=[("before-send", faults.hook)])
    vol = KIND.create(ctx, ADDR, props())
    result = Executor(registry(), ctx, _state_of(vol), lambda s: None).run(_delete_plan(vol))
    assert result.ok, [str(f.error) for f in result.failures]
    assert faults.injected == {"CreateSnapshot:lost": 1}
    (snap,) = in_aws(ctx)
    assert result.snapshots[ADDR] == snap["SnapshotId"]
