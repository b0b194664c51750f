"""aws_volume_attachment against moto, plus what moto hides (attaching, detaching) by injection."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources.volume_attachment import KIND

ADDR = 'aws_volume_attachment.data["0"]'
VOLUME_ADDR = 'aws_ebs_volume.data["0"]'


def tags(**kv: str) -> list[dict[str, Any]]:
    return [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in kv.items()]}]


@pytest.fixture
def node(ctx: AwsContext) -> dict[str, str]:
    """Two running instances and a data volume in one AZ, made directly in moto."""
    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone="us-west-2a")
    run = ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2, InstanceType="t3.large",
                            SubnetId=subnet["Subnet"]["SubnetId"])
    a, b = (i["InstanceId"] for i in run["Instances"])
    volume = ec2.create_volume(
        AvailabilityZone="us-west-2a",
        Size=100,
        VolumeType="gp3",
        TagSpecifications=tags(**{"byoc:cluster": "test", "byoc:address": VOLUME_ADDR}),
    )["VolumeId"]
    return {"instance": a, "other": b, "volume": volume}


def props(node: dict[str, str], **over: Any) -> dict[str, Any]:
    base = {
        "device_name": "/dev/sdf",
        "volume_id": node["volume"],
        "instance_id": node["instance"],
        "stop_instance_before_detaching": True,
    }
    return {**base, **over}


def on(ctx: AwsContext, event: str, hook: Any) -> None:
    ctx.client("ec2").meta.events.register_first(event, hook)


def record(ctx: AwsContext, order: list[str], *ops: str) -> None:
    """Append each call of ``ops`` to ``order`` (moto still answers them)."""
    for op in ops:
        on(ctx, f"before-call.ec2.{op}", lambda op=op, **kw: order.append(op))


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    on(ctx, f"before-call.ec2.{op}", hook)
    return calls


def attachment_state(
    ctx: AwsContext, volume_state: str, state: str, times: int, instance: str, after: str | None = None
) -> list[str]:
    """The next ``times`` DescribeVolumes (after a call of ``after``, if given) show the volume
    ``volume_state`` with an attachment to ``instance`` in ``state`` (moto attaches and detaches
    at once); returns what each of those calls, and the ones after them, showed."""
    seen: list[str] = []
    started: list[int] = [] if after else [1]
    if after:
        on(ctx, f"after-call.ec2.{after}", lambda **kw: started.append(1))

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        if not started:
            return
        for vol in parsed.get("Volumes", []):
            if len(seen) < times:
                vol["State"] = volume_state
                vol["Attachments"] = [{"VolumeId": vol["VolumeId"], "InstanceId": instance,
                                       "Device": "/dev/sdf", "State": state}]
            atts = vol.get("Attachments") or [{}]
            seen.append(atts[0].get("State") or vol["State"])

    on(ctx, "after-call.ec2.DescribeVolumes", hook)
    return seen


def instance_state(ctx: AwsContext, instance_id: str) -> str:
    res = ctx.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(res[0]["Instances"][0]["State"]["Name"])


def volume(ctx: AwsContext, volume_id: str) -> dict[str, Any]:
    return dict(ctx.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0])


def test_create_equals_discover(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node))
    assert live.address == ADDR and live.id == f"{node['volume']}:{node['instance']}"
    assert live.props == props(node)
    assert KIND.discover(ctx) == [live]
    assert KIND.find(ctx, ADDR) == live
    assert volume(ctx, node["volume"])["Attachments"][0]["State"] == "attached"


def test_rules() -> None:
    assert KIND.force_new == {"device_name", "volume_id", "instance_id"}
    assert KIND.pins == frozenset() and KIND.hashed == frozenset()
    assert KIND.holds_data is False


def test_discovery_is_per_cluster_and_only_data_volumes(ctx: AwsContext, node: dict[str, str]) -> None:
    ec2 = ctx.client("ec2")
    assert KIND.discover(ctx) == []  # a data volume that is not attached
    live = KIND.create(ctx, ADDR, props(node))
    root = ec2.create_volume(AvailabilityZone="us-west-2a", Size=8,
                             TagSpecifications=tags(**{"byoc:cluster": "test", "byoc:root-of": "x"}))
    ec2.attach_volume(Device="/dev/sdg", InstanceId=node["other"], VolumeId=root["VolumeId"])
    other = AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.discover(ctx) == [live]


def test_update_stop_setting_in_place(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node))
    order: list[str] = []
    record(ctx, order, "AttachVolume", "DetachVolume", "StopInstances")
    updated = KIND.update(ctx, live, props(node, stop_instance_before_detaching=False),
                          {"stop_instance_before_detaching"})
    assert updated.props == props(node, stop_instance_before_detaching=False)
    assert KIND.discover(ctx) == [updated]
    back = KIND.update(ctx, updated, props(node), {"stop_instance_before_detaching"})
    assert KIND.discover(ctx) == [back] == [live]
    assert order == []  # nothing but the setting byoc keeps on the volume


def test_create_waits_while_attaching(ctx: AwsContext, node: dict[str, str]) -> None:
    seen = attachment_state(ctx, "in-use", "attaching", 3, node["instance"], after="AttachVolume")
    live = KIND.create(ctx, ADDR, props(node))
    assert seen == ["attaching", "attaching", "attaching", "attached"]
    assert live.props == props(node)


def test_create_retries_incorrect_state(ctx: AwsContext, node: dict[str, str]) -> None:
    calls = fail_first(ctx, "AttachVolume", "IncorrectState", 2)  # still leaving its old instance
    live = KIND.create(ctx, ADDR, props(node))
    assert len(calls) == 3 and KIND.discover(ctx) == [live]


def test_create_adopts_an_attachment_to_the_same_instance(ctx: AwsContext, node: dict[str, str]) -> None:
    ctx.client("ec2").attach_volume(Device="/dev/sdf", InstanceId=node["instance"], VolumeId=node["volume"])
    order: list[str] = []
    record(ctx, order, "AttachVolume")
    live = KIND.create(ctx, ADDR, props(node))
    assert order == [] and live.props == props(node)


def test_create_refuses_a_volume_attached_elsewhere(ctx: AwsContext, node: dict[str, str]) -> None:
    ctx.client("ec2").attach_volume(Device="/dev/sdf", InstanceId=node["other"], VolumeId=node["volume"])
    with pytest.raises(CloudError) as err:
        KIND.create(ctx, ADDR, props(node))
    assert node["other"] in str(err.value) and node["instance"] in str(err.value)
    assert err.value.address == ADDR


def test_create_starts_an_instance_stopped_for_a_detach(ctx: AwsContext, node: dict[str, str]) -> None:
    ctx.client("ec2").stop_instances(InstanceIds=[node["instance"]])
    KIND.create(ctx, ADDR, props(node))
    assert instance_state(ctx, node["instance"]) == "running"


def test_delete_stops_the_instance_first_then_detaches(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node))
    order: list[str] = []
    record(ctx, order, "StopInstances", "DetachVolume")
    KIND.delete(ctx, live)
    assert order == ["StopInstances", "DetachVolume"]
    assert instance_state(ctx, node["instance"]) == "stopped"
    assert volume(ctx, node["volume"])["State"] == "available"
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # already detached: fine
    assert order == ["StopInstances", "DetachVolume"]


def test_delete_without_stopping(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node, stop_instance_before_detaching=False))
    order: list[str] = []
    record(ctx, order, "StopInstances", "DetachVolume")
    KIND.delete(ctx, KIND.discover(ctx)[0])  # the setting comes back through discovery
    assert order == ["DetachVolume"] and live.props["stop_instance_before_detaching"] is False
    assert instance_state(ctx, node["instance"]) == "running"


def test_delete_waits_while_detaching(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node, stop_instance_before_detaching=False))
    seen = attachment_state(ctx, "in-use", "detaching", 3, node["instance"], after="DetachVolume")
    KIND.delete(ctx, live)
    assert seen == ["detaching", "detaching", "detaching", "available"]
    assert KIND.discover(ctx) == []


def test_detach_of_a_volume_already_detached_is_success(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node, stop_instance_before_detaching=False))
    ctx.client("ec2").detach_volume(VolumeId=node["volume"], InstanceId=node["instance"])
    # the first look still shows it attached (a stale read): DetachVolume then answers that it
    # is not attached, which is success
    attachment_state(ctx, "in-use", "attached", 1, node["instance"])
    errors: list[str] = []
    on(ctx, "after-call.ec2.DetachVolume",
       lambda parsed, **kw: errors.append(parsed.get("Error", {}).get("Code", "")))
    KIND.delete(ctx, live)
    assert errors == ["InvalidAttachment.NotFound"]


def test_incorrect_state_while_still_attached_is_raised(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node, stop_instance_before_detaching=False))
    calls = fail_first(ctx, "DetachVolume", "IncorrectState", 1)
    with pytest.raises(ClientError, match="IncorrectState"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


def test_delete_raises_other_errors_at_once(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node, stop_instance_before_detaching=False))
    calls = fail_first(ctx, "DetachVolume", "UnauthorizedOperation", 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


def test_delete_of_a_gone_volume_is_success(ctx: AwsContext, node: dict[str, str]) -> None:
    gone = Live(ADDR, KIND.kind, "vol-0000:i-0000",
                props(node, volume_id="vol-00000000000000000"), {})
    KIND.delete(ctx, gone)


def test_delete_detaches_only_once_the_instance_has_stopped(ctx: AwsContext, node: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(node))
    events: list[str] = []
    stopped: list[int] = []
    on(ctx, "after-call.ec2.StopInstances", lambda **kw: stopped.append(1))

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        for status in parsed.get("InstanceStatuses", []):
            if stopped and events.count("stopping") < 2:  # real AWS: "stopping" for a while
                status["InstanceState"] = {"Code": 64, "Name": "stopping"}
            if stopped:
                events.append(status["InstanceState"]["Name"])

    on(ctx, "after-call.ec2.DescribeInstanceStatus", hook)
    record(ctx, events, "DetachVolume")
    KIND.delete(ctx, live)
    assert events == ["stopping", "stopping", "stopped", "DetachVolume"]


def test_the_look_reads_the_volume_at_its_address_alone(ctx: AwsContext, node: dict[str, str]) -> None:
    ec2 = ctx.client("ec2")
    assert KIND.find(ctx, ADDR) is None  # the data volume is not attached yet
    live = KIND.create(ctx, ADDR, props(node))
    assert KIND.find(ctx, ADDR) == live
    # keys may hold what a filter reads as a wildcard: another node's attached volume differs
    # from this one's address only there
    mine, lookalike = 'aws_volume_attachment.data["[1]"]', 'aws_volume_attachment.data["(1)"]'
    other = ec2.create_volume(AvailabilityZone="us-west-2a", Size=8, TagSpecifications=tags(
        **{"byoc:cluster": "test", "byoc:address": 'aws_ebs_volume.data["(1)"]'}))["VolumeId"]
    ec2.attach_volume(Device="/dev/sdg", InstanceId=node["other"], VolumeId=other)
    assert KIND.find(ctx, mine) is None
    assert KIND.find(ctx, lookalike).props["volume_id"] == other  # type: ignore[union-attr]


def test_the_instance_state_is_read_alone_and_an_unknown_id_fails_no_other(
    ctx: AwsContext, node: dict[str, str]
) -> None:
    """The attachment needs its instance's state only: DescribeInstanceStatus, never a whole
    description; one id AWS does not know refuses a batch, and its ids are asked again alone."""
    from byoc.resources._instances import _states_named

    described: list[int] = []
    statuses: list[list[str]] = []
    on(ctx, "before-call.ec2.DescribeInstances", lambda **kw: described.append(1))
    on(ctx, "before-parameter-build.ec2.DescribeInstanceStatus",
       lambda params, **kw: statuses.append(list(params["InstanceIds"])))
    live = KIND.create(ctx, ADDR, props(node))
    assert described == [] and statuses == [[node["instance"]]]
    ctx.client("ec2").stop_instances(InstanceIds=[node["other"]])
    gone = "i-0000000000000dead"
    statuses.clear()
    ids = [node["instance"], gone, node["other"]]
    assert _states_named(ctx, ids) == {node["instance"]: "running", node["other"]: "stopped"}
    assert statuses == [ids, [node["instance"]], [gone], [node["other"]]]
    KIND.delete(ctx, live)
    assert described == []
