"""aws_ebs_volume against moto, plus what moto hides (creating, modifying, in-use) by injection."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.ebs_volume import KIND

ADDR = 'aws_ebs_volume.data["0"]'
KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def props(**over: Any) -> dict[str, Any]:
    base = {
        "availability_zone": "us-west-2a",
        "size": 100,
        "type": "gp3",
        "iops": 3000,
        "throughput": 125,
        "encrypted": True,
        "kms_key_id": None,
        "snapshot_id": None,
        "tags": {"Name": "test-data-0", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


def on(ctx: AwsContext, event: str, hook: Any) -> None:
    ctx.client("ec2").meta.events.register_first(event, hook)


def count(ctx: AwsContext, op: str) -> list[dict[str, Any]]:
    """Record the parameters of every ``op`` call (moto still answers it)."""
    calls: list[dict[str, Any]] = []
    on(ctx, f"before-parameter-build.ec2.{op}", lambda params, **kw: calls.append(dict(params)))
    return calls


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    on(ctx, f"before-call.ec2.{op}", hook)
    return calls


def edit_volumes(ctx: AwsContext, edit: Any, times: int) -> list[int]:
    """``edit(volume)`` every volume in the next ``times`` DescribeVolumes answers."""
    seen: list[int] = []

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        seen.append(1)
        if len(seen) <= times:
            for vol in parsed.get("Volumes", []):
                edit(vol)

    on(ctx, "after-call.ec2.DescribeVolumes", hook)
    return seen


def raw(ctx: AwsContext, volume_id: str) -> dict[str, Any]:
    return dict(ctx.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0])


def other_cluster(ctx: AwsContext) -> AwsContext:
    return AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)


def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    assert live.address == ADDR and live.id.startswith("vol-")
    assert live.props == props()
    assert live.attr("arn") == f"arn:aws:ec2:us-west-2:123456789012:volume/{live.id}"
    assert KIND.discover(ctx) == [live]
    assert KIND.find(ctx, ADDR) == live
    tags = {t["Key"]: t["Value"] for t in raw(ctx, live.id)["Tags"]}
    assert tags["byoc:encryption"] == "default"  # kept out of the tags prop


def test_rules() -> None:
    assert KIND.force_new == {"availability_zone", "encrypted", "kms_key_id", "snapshot_id"}
    assert KIND.pins == frozenset() and KIND.hashed == frozenset()
    assert KIND.holds_data is True


def test_discovery_is_per_cluster_and_skips_root_volumes(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    ctx.client("ec2").create_volume(
        AvailabilityZone="us-west-2a",
        Size=8,
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [{"Key": "byoc:cluster", "Value": "test"}, {"Key": "byoc:root-of", "Value": "x"}],
            }
        ],
    )
    assert KIND.discover(other_cluster(ctx)) == []
    assert KIND.discover(ctx) == [live]


def test_default_key_alias_and_unencrypted_read_back_as_asked(ctx: AwsContext) -> None:
    default = KIND.create(ctx, ADDR, props())
    assert raw(ctx, default.id)["KmsKeyId"].startswith("arn:aws:kms:")  # AWS names the managed key
    assert default.props["kms_key_id"] is None
    alias = "arn:aws:kms:us-west-2:123456789012:alias/proton"
    b = 'aws_ebs_volume.data["1"]'
    given = KIND.create(ctx, b, props(kms_key_id=alias, tags={"byoc:cluster": "test", "byoc:address": b}))
    assert given.props["kms_key_id"] == alias
    c = 'aws_ebs_volume.data["2"]'
    plain = KIND.create(ctx, c, props(encrypted=False, tags={"byoc:cluster": "test", "byoc:address": c}))
    assert plain.props["encrypted"] is False
    # an account that encrypts EBS by default encrypts it anyway: still no diff (or replacement loop)
    edit_volumes(ctx, lambda v: v.update(Encrypted=True, KmsKeyId=KEY_ARN), 1)
    assert {v.address: v for v in KIND.discover(ctx)}[c].props == plain.props


def test_gp3_defaults_and_other_types_are_normalised(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    # moto (and old describes) may leave out a gp3 volume's Iops/Throughput: AWS's baseline applies
    edit_volumes(ctx, lambda v: (v.pop("Iops", None), v.pop("Throughput", None)), 1)
    assert KIND.discover(ctx) == [live]
    b = 'aws_ebs_volume.data["1"]'
    io2 = KIND.create(ctx, b, props(type="io2", iops=4000, throughput=None,
                                    tags={"byoc:cluster": "test", "byoc:address": b}))
    assert io2.props["iops"] == 4000 and io2.props["throughput"] is None
    c = 'aws_ebs_volume.data["2"]'
    gp2 = KIND.create(ctx, c, props(type="gp2", iops=None, throughput=None,
                                    tags={"byoc:cluster": "test", "byoc:address": c}))
    edit_volumes(ctx, lambda v: v.update(Iops=300) if v["VolumeType"] == "gp2" else None, 1)
    assert {v.address: v for v in KIND.discover(ctx)}[c].props == gp2.props  # gp2 IOPS are not a setting


def test_create_waits_while_creating(ctx: AwsContext) -> None:
    seen = edit_volumes(ctx, lambda v: v.update(State="creating"), 3)
    live = KIND.create(ctx, ADDR, props())
    assert len(seen) == 4  # three polls "creating", then available
    assert live.props == props()


def test_create_from_snapshot(ctx: AwsContext) -> None:
    ec2 = ctx.client("ec2")
    src = ec2.create_volume(AvailabilityZone="us-west-2a", Size=100)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=src)["SnapshotId"]
    live = KIND.create(ctx, ADDR, props(snapshot_id=snap))
    assert live.props == props(snapshot_id=snap)


def test_create_cleans_up_a_volume_that_fails(ctx: AwsContext) -> None:
    edit_volumes(ctx, lambda v: v.update(State="error"), 1)
    deletes = count(ctx, "DeleteVolume")
    with pytest.raises(CloudError, match="'error' instead of available") as err:
        KIND.create(ctx, ADDR, props())
    assert err.value.address == ADDR and len(deletes) == 1
    assert KIND.discover(ctx) == []


def test_update_grows_retypes_and_retags_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = count(ctx, "ModifyVolume")
    tags = {**props()["tags"], "team": "b", "env": "prod"}
    want = props(size=200, iops=6000, throughput=250, tags=tags)
    updated = KIND.update(ctx, live, want, {"size", "iops", "throughput", "tags"})
    assert updated.id == live.id and updated.props == want
    assert KIND.discover(ctx) == [updated]
    assert calls == [{"VolumeId": live.id, "Size": 200, "Iops": 6000, "Throughput": 250}]  # one call
    io2 = props(type="io2", iops=8000, throughput=None, size=200, tags=tags)
    assert KIND.update(ctx, updated, io2, {"type", "iops", "throughput"}).props == io2
    assert KIND.discover(ctx)[0].props == io2


def test_update_waits_while_modifying_and_reports_failure(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    states = ["modifying", "modifying", "optimizing"]
    seen: list[str] = []

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        # AWS answers with the most recent modification of each volume; moto keeps them all (in
        # order), and two modifications in the same second tie on StartTime
        parsed["VolumesModifications"] = parsed.get("VolumesModifications", [])[-1:]
        for mod in parsed["VolumesModifications"]:
            if len(seen) < len(states):
                mod.update(ModificationState=states[len(seen)], StatusMessage="injected")
            seen.append(mod["ModificationState"])

    on(ctx, "after-call.ec2.DescribeVolumesModifications", hook)
    live = KIND.update(ctx, live, props(size=150), {"size"})
    assert seen == states and live.props["size"] == 150
    states.append("failed")
    with pytest.raises(CloudError, match="ModifyVolume failed: injected") as err:
        KIND.update(ctx, live, props(size=300), {"size"})
    assert err.value.aws_id == live.id


def test_shrinking_is_refused_before_any_call(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = count(ctx, "ModifyVolume")
    with pytest.raises(CloudError, match="EBS volumes cannot shrink; "):
        KIND.update(ctx, live, props(size=50), {"size"})
    assert calls == [] and KIND.discover(ctx) == [live]


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # already gone: fine


def test_delete_retries_volume_in_use(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteVolume", "VolumeInUse", 3)  # the detach is still settling
    KIND.delete(ctx, live)
    assert len(calls) == 4 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDR, props())
    calls = fail_first(ctx, "DeleteVolume", "UnauthorizedOperation", 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


def test_the_look_before_create_reads_its_address_alone_and_takes_no_lookalike(ctx: AwsContext) -> None:
    # keys may hold what a filter reads as a wildcard: a lookalike differs only there
    mine, lookalike = 'aws_ebs_volume.data["[0]"]', 'aws_ebs_volume.data["(0)"]'
    other = KIND.create(ctx, lookalike, props(tags={**props()["tags"], "byoc:address": lookalike}))
    asked = count(ctx, "DescribeVolumes")
    answered: list[str] = []
    on(ctx, "after-call.ec2.DescribeVolumes", lambda parsed, **kw: answered.extend(
        t["Value"] for v in parsed["Volumes"] for t in v.get("Tags") or () if t["Key"] == "byoc:address"))
    assert KIND.find(ctx, mine) is None
    assert {"Name": "tag:byoc:address", "Values": ["aws_ebs_volume.data???0???"]} in asked[0]["Filters"]
    assert answered == [lookalike]  # narrowed here, not by the filter
    made = KIND.create(ctx, mine, props(tags={**props()["tags"], "byoc:address": mine}))
    assert KIND.find(ctx, mine) == made and KIND.find(ctx, lookalike) == other and made.id != other.id
