"""aws_instance against moto, plus what moto hides (IAM propagation, pending, spot requests) by
injection; and a node replaced with its data volume kept, through the three node kinds."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources import ebs_volume, volume_attachment
from byoc.resources.instance import KIND
from tests.awsrealism import replaced_profiles_show_on_instances

ADDR = 'aws_instance.node["0"]'
SCRIPT = "#!/bin/bash\necho proton\n"
PROFILE_ERROR = ("Value (test-node) for parameter iamInstanceProfile.name is invalid. "
                 "Invalid IAM Instance Profile name")


@pytest.fixture(autouse=True)
def real_profiles() -> Any:
    """DescribeInstances shows a replaced profile, as in AWS (see tests/awsrealism.py)."""
    with replaced_profiles_show_on_instances():
        yield


@pytest.fixture
def net(ctx: AwsContext) -> dict[str, str]:
    """A VPC, a private subnet, two security groups and two instance profiles, made in moto."""
    ec2, iam = ctx.client("ec2"), ctx.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone="us-west-2a")
    sgs = [ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"] for n in ("a", "b")]
    iam.create_role(RoleName="test-node", AssumeRolePolicyDocument="{}")
    for name in ("test-node", "test-node-2"):
        iam.create_instance_profile(InstanceProfileName=name)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName="test-node")
    return {"subnet": subnet["Subnet"]["SubnetId"], "sg": sgs[0], "sg2": sgs[1]}


def props(net: dict[str, str], **over: Any) -> dict[str, Any]:
    base = {
        "ami": "ami-0123456789abcdef0",
        "instance_type": "c5.2xlarge",
        "subnet_id": net["subnet"],
        "vpc_security_group_ids": [net["sg"]],
        "iam_instance_profile": "test-node",
        "key_name": None,
        "user_data": SCRIPT,
        "monitoring": False,
        "ebs_optimized": True,
        "metadata_options": {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 2,
            "instance_metadata_tags": "disabled",
        },
        "root_block_device": {
            "volume_size": 30,
            "volume_type": "gp3",
            "encrypted": True,
            "kms_key_id": None,
            "delete_on_termination": True,
        },
        "spot": False,
        "tags": {"Name": "test-node-0", "byoc:cluster": "test", "byoc:address": ADDR, "team": "a"},
    }
    return {**base, **over}


def hashed(p: dict[str, Any]) -> dict[str, Any]:
    """``p`` as discovery reports it: user data by its sha256."""
    return {**p, "user_data": "sha256:" + hashlib.sha256(p["user_data"].encode()).hexdigest()}


def on(ctx: AwsContext, event: str, hook: Any) -> None:
    ctx.client("ec2").meta.events.register_first(event, hook)


def params_of(ctx: AwsContext, op: str) -> list[dict[str, Any]]:
    """The parameters of every ``op`` call (moto still answers it)."""
    calls: list[dict[str, Any]] = []
    on(ctx, f"before-parameter-build.ec2.{op}", lambda params, **kw: calls.append(dict(params)))
    return calls


def record(ctx: AwsContext, order: list[str], *ops: str) -> None:
    for op in ops:
        on(ctx, f"before-call.ec2.{op}", lambda op=op, **kw: order.append(op))


def fail_first(ctx: AwsContext, op: str, code: str, times: int, message: str = "injected") -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise ClientError({"Error": {"Code": code, "Message": message}}, op)

    on(ctx, f"before-call.ec2.{op}", hook)
    return calls


def edit_instances(ctx: AwsContext, edit: Any, times: int, after: str | None = None) -> list[str]:
    """``edit(instance)`` in the next ``times`` DescribeInstances answers (after a call of
    ``after``, if given); returns the state each answer showed from then on."""
    seen: list[str] = []
    started: list[int] = [] if after else [1]
    if after:
        on(ctx, f"after-call.ec2.{after}", lambda **kw: started.append(1))

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        if not started:
            return
        for res in parsed.get("Reservations", []):
            for inst in res["Instances"]:
                if len(seen) < times:
                    edit(inst)
                seen.append(inst["State"]["Name"])

    on(ctx, "after-call.ec2.DescribeInstances", hook)
    return seen


def raw(ctx: AwsContext, instance_id: str) -> dict[str, Any]:
    res = ctx.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(res[0]["Instances"][0])


def raw_volume(ctx: AwsContext, volume_id: str) -> dict[str, Any]:
    return dict(ctx.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0])


def tag_map(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or ()}


# -- create and discover ------------------------------------------------------------------------
def test_create_equals_discover(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    assert live.address == ADDR and live.id.startswith("i-")
    assert live.props == hashed(props(net))
    assert KIND.discover(ctx) == [live]
    assert KIND.find(ctx, ADDR) == live
    assert live.attr("arn") == f"arn:aws:ec2:us-west-2:123456789012:instance/{live.id}"
    assert live.attr("state") == "running" and live.attr("availability_zone") == "us-west-2a"
    assert live.attr("private_ip").startswith("10.0.") and live.attr("root_volume_id").startswith("vol-")


def test_aws_reports_imdsv2_and_an_encrypted_root_volume(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    inst = raw(ctx, live.id)
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    root = raw_volume(ctx, live.attr("root_volume_id"))
    assert root["Encrypted"] is True and root["Size"] == 30 and root["VolumeType"] == "gp3"
    assert root["KmsKeyId"].startswith("arn:aws:kms:")  # the AWS managed key: reported as None


def test_hidden_tags_and_root_volume_tags(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    tags = tag_map(raw(ctx, live.id))
    assert tags["byoc:user-data-sha256"] == hashlib.sha256(SCRIPT.encode()).hexdigest()
    assert tags["byoc:market"] == "on-demand"
    assert "byoc:user-data-sha256" not in live.props["tags"]
    root_tags = tag_map(raw_volume(ctx, live.attr("root_volume_id")))
    assert root_tags == {"Name": "test-node-0", "byoc:cluster": "test", "byoc:root-of": ADDR, "team": "a",
                         "byoc:encryption": "default"}
    assert ebs_volume.KIND.discover(ctx) == []  # a root volume is no data volume


def test_run_instances_request(ctx: AwsContext, net: dict[str, str]) -> None:
    calls = params_of(ctx, "RunInstances")
    ctx.client("ec2").create_key_pair(KeyName="ops")
    want = props(net, key_name="ops", monitoring=True, spot=True,
                 root_block_device={**props(net)["root_block_device"], "kms_key_id": "arn:aws:kms:us-west-2:"
                                    "123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"})
    live = KIND.create(ctx, ADDR, want)
    assert live.props == hashed(want) and KIND.discover(ctx) == [live]
    (call,) = calls
    assert call["UserData"] == SCRIPT and call["IamInstanceProfile"] == {"Name": "test-node"}
    assert call["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"  # the AMI is unknown: fallback
    assert call["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == want["root_block_device"]["kms_key_id"]
    assert call["InstanceMarketOptions"]["SpotOptions"] == {
        "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}
    assert {s["ResourceType"] for s in call["TagSpecifications"]} == {"instance", "volume"}


def test_ebs_optimized_is_asked_for_and_read_back(ctx: AwsContext, net: dict[str, str]) -> None:
    calls = params_of(ctx, "RunInstances")
    # m3.xlarge is EBS-optimised only on request: the flag is sent and read back as it is
    live = KIND.create(ctx, ADDR, props(net, instance_type="m3.xlarge"))
    assert calls[-1]["EbsOptimized"] is True and raw(ctx, live.id)["EbsOptimized"] is True
    assert live.props["ebs_optimized"] is True and KIND.discover(ctx) == [live]
    KIND.delete(ctx, live)
    # t2 cannot be: false is sent, and asking for true is refused before AWS is asked
    live = KIND.create(ctx, ADDR, props(net, instance_type="t2.micro", ebs_optimized=False))
    assert calls[-1]["EbsOptimized"] is False and live.props["ebs_optimized"] is False
    KIND.delete(ctx, live)
    with pytest.raises(CloudError, match=r"t2\.large cannot be EBS-optimized"):
        KIND.create(ctx, ADDR, props(net, instance_type="t2.large"))


def test_a_type_optimised_by_default_reads_as_optimised_whatever_the_flag(
    ctx: AwsContext, net: dict[str, str]
) -> None:
    # AWS reports EbsOptimized false for a c5 launched without asking (an instance from before byoc
    # set the flag): it is EBS-optimised all the same, so no diff and no replacement
    live = KIND.create(ctx, ADDR, props(net, ebs_optimized=False))
    assert raw(ctx, live.id)["EbsOptimized"] is False
    assert live.props["ebs_optimized"] is True and KIND.discover(ctx)[0].props["ebs_optimized"] is True


def test_root_device_comes_from_the_ami(ctx: AwsContext, net: dict[str, str]) -> None:
    ec2 = ctx.client("ec2")
    image = ec2.register_image(Name="al2023", RootDeviceName="/dev/xvda")["ImageId"]
    root_device = ec2.describe_images(ImageIds=[image])["Images"][0]["RootDeviceName"]
    calls = params_of(ctx, "RunInstances")
    live = KIND.create(ctx, ADDR, props(net, ami=image))
    assert calls[0]["BlockDeviceMappings"][0]["DeviceName"] == root_device
    assert live.props == hashed(props(net, ami=image))


def test_spot_falls_back_to_the_market_tag(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net, spot=True))
    assert live.props["spot"] is True  # moto reports InstanceLifecycle "spot"
    edit_instances(ctx, lambda i: i.pop("InstanceLifecycle", None), 5)
    assert KIND.discover(ctx) == [live]  # without it, the tag byoc set at launch


def test_rules() -> None:
    assert KIND.force_new == {"ami", "instance_type", "subnet_id", "key_name", "user_data",
                              "root_block_device", "spot", "ebs_optimized"}
    assert KIND.pins == {"vpc_security_group_ids"}
    assert KIND.hashed == {"user_data"}
    assert KIND.holds_data is False


def test_discovery_is_per_cluster_and_skips_terminated(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    other = AwsContext(cluster="other", region=ctx.region, sleep=ctx.sleep, poll_delay=0.01)
    assert KIND.discover(other) == []
    ec2 = ctx.client("ec2")
    gone = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=net["subnet"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "byoc:cluster", "Value": "test"},
            {"Key": "byoc:address", "Value": 'aws_instance.node["1"]'},
        ]}],
    )["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    assert KIND.discover(ctx) == [live]


def test_one_volume_describe_per_discovery_pass(ctx: AwsContext, net: dict[str, str]) -> None:
    KIND.create(ctx, ADDR, props(net))
    calls: dict[str, int] = {}
    for op in ("DescribeVolumes", "DescribeInstances", "DescribeIamInstanceProfileAssociations"):
        on(ctx, f"before-call.ec2.{op}", lambda op=op, **kw: calls.__setitem__(op, calls.get(op, 0) + 1))
    with ctx.discovery_pass():
        for kind in (KIND, ebs_volume.KIND, volume_attachment.KIND):
            kind.discover(ctx)
    # the profile comes with DescribeInstances: no association read of its own
    assert calls == {"DescribeVolumes": 1, "DescribeInstances": 1}


# -- create: what moto does not emulate ----------------------------------------------------------
def test_new_instance_profile_is_retried_until_iam_catches_up(ctx: AwsContext, net: dict[str, str]) -> None:
    calls = params_of(ctx, "RunInstances")
    failures = fail_first(ctx, "RunInstances", "InvalidParameterValue", 2, PROFILE_ERROR)
    live = KIND.create(ctx, ADDR, props(net))
    assert len(failures) == 3
    assert len({c["ClientToken"] for c in calls}) == 3  # an attempt AWS refused launched nothing
    assert KIND.discover(ctx) == [live]


def test_other_invalid_parameter_is_raised_at_once(ctx: AwsContext, net: dict[str, str]) -> None:
    message = "Value (c5.huge) for parameter instanceType is invalid."
    failures = fail_first(ctx, "RunInstances", "InvalidParameterValue", 5, message)
    with pytest.raises(ClientError, match="instanceType"):
        KIND.create(ctx, ADDR, props(net))
    assert len(failures) == 1 and KIND.discover(ctx) == []


def test_create_waits_while_pending(ctx: AwsContext, net: dict[str, str]) -> None:
    seen = edit_instances(ctx, lambda i: i.update(State={"Code": 0, "Name": "pending"}), 3,
                          after="RunInstances")
    live = KIND.create(ctx, ADDR, props(net))
    assert seen[:4] == ["pending", "pending", "pending", "running"]
    assert live.attr("state") == "running"


def test_a_launch_that_fails_is_reported(ctx: AwsContext, net: dict[str, str]) -> None:
    reason = {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}
    edit_instances(ctx, lambda i: i.update(State={"Code": 48, "Name": "terminated"}, StateReason=reason), 1,
                   after="RunInstances")
    with pytest.raises(CloudError, match=r"terminated instead of running: Client\.InternalError") as err:
        KIND.create(ctx, ADDR, props(net))
    assert err.value.address == ADDR and err.value.code == "Client.InternalError"


def test_create_adopts_an_instance_a_crashed_run_launched(ctx: AwsContext, net: dict[str, str]) -> None:
    first = KIND.create(ctx, ADDR, props(net))
    ctx.client("ec2").stop_instances(InstanceIds=[first.id])
    calls = params_of(ctx, "RunInstances")
    again = KIND.create(ctx, ADDR, props(net, vpc_security_group_ids=sorted([net["sg"], net["sg2"]])))
    assert calls == [] and again.id == first.id and again.attr("state") == "running"
    assert again.props["vpc_security_group_ids"] == sorted([net["sg"], net["sg2"]])
    with pytest.raises(CloudError, match="different instance_type") as err:
        KIND.create(ctx, ADDR, props(net, instance_type="m5.large"))
    assert err.value.code == "Conflict"


# -- update -------------------------------------------------------------------------------------
def test_update_in_place(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    want = props(
        net,
        vpc_security_group_ids=sorted([net["sg"], net["sg2"]]),
        iam_instance_profile="test-node-2",
        metadata_options={"http_endpoint": "enabled", "http_tokens": "optional",
                          "http_put_response_hop_limit": 1, "instance_metadata_tags": "enabled"},
        tags={**props(net)["tags"], "team": "b", "env": "prod"},
    )
    changed = {"vpc_security_group_ids", "iam_instance_profile", "metadata_options", "tags"}
    updated = KIND.update(ctx, live, want, changed)
    assert updated.id == live.id and updated.props == hashed(want)
    assert KIND.discover(ctx) == [updated]
    root_tags = tag_map(raw_volume(ctx, live.attr("root_volume_id")))
    assert root_tags["team"] == "b" and root_tags["env"] == "prod"  # the root volume follows


def test_profile_update_retries_iam_propagation(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    failures = fail_first(ctx, "ReplaceIamInstanceProfileAssociation", "InvalidParameterValue", 2,
                          PROFILE_ERROR)
    updated = KIND.update(ctx, live, props(net, iam_instance_profile="test-node-2"), {"iam_instance_profile"})
    assert len(failures) == 3 and updated.props["iam_instance_profile"] == "test-node-2"


def test_metadata_update_waits_until_applied(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    seen: list[str] = []

    def pending(inst: dict[str, Any]) -> None:
        inst["MetadataOptions"]["State"] = "pending"

    edit_instances(ctx, pending, 2, after="ModifyInstanceMetadataOptions")
    on(ctx, "after-call.ec2.DescribeInstances", lambda parsed, **kw: seen.extend(
        i["MetadataOptions"]["State"] for r in parsed.get("Reservations", []) for i in r["Instances"]))
    meta = {**props(net)["metadata_options"], "http_put_response_hop_limit": 3}
    updated = KIND.update(ctx, live, props(net, metadata_options=meta), {"metadata_options"})
    assert seen[:3] == ["pending", "pending", "applied"]
    assert updated.props["metadata_options"] == meta


def test_monitoring(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net, monitoring=True))
    assert live.props["monitoring"] is True and KIND.discover(ctx) == [live]
    calls = params_of(ctx, "UnmonitorInstances")
    # moto implements neither MonitorInstances nor UnmonitorInstances: the request is checked
    with pytest.raises(NotImplementedError):
        KIND.update(ctx, live, props(net), {"monitoring"})
    assert calls == [{"InstanceIds": [live.id]}]


# -- delete -------------------------------------------------------------------------------------
def test_delete_then_delete_again(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    seen: list[str] = []

    def shutting_down(parsed: dict[str, Any], **kw: Any) -> None:  # AWS: for a while, not at once
        for status in parsed["InstanceStatuses"]:
            if len(seen) < 2:
                status["InstanceState"] = {"Code": 32, "Name": "shutting-down"}
            seen.append(status["InstanceState"]["Name"])

    described = params_of(ctx, "DescribeInstances")
    on(ctx, "after-call.ec2.DescribeInstanceStatus", shutting_down)
    KIND.delete(ctx, live)
    # the wait reads the state alone: one description, before terminating (a spot request?)
    assert seen == ["shutting-down", "shutting-down", "terminated"] and len(described) == 1
    assert KIND.discover(ctx) == []
    order: list[str] = []
    record(ctx, order, "TerminateInstances")
    KIND.delete(ctx, live)  # terminated already: nothing to do
    assert order == []


def test_delete_cancels_the_spot_request_first(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net, spot=True))
    # moto gives spot instances no request id: inject one, and AWS's answer for a closed request
    edit_instances(ctx, lambda i: i.update(SpotInstanceRequestId="sir-0123abcd"), 1)
    order: list[str] = []
    record(ctx, order, "CancelSpotInstanceRequests", "TerminateInstances")
    cancels = fail_first(ctx, "CancelSpotInstanceRequests", "InvalidSpotInstanceRequestID.NotFound", 1)
    KIND.delete(ctx, live)
    assert order == ["CancelSpotInstanceRequests", "TerminateInstances"] and len(cancels) == 1
    assert KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    calls = fail_first(ctx, "TerminateInstances", "UnauthorizedOperation", 5)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]


# -- the node replaced, its data kept ---------------------------------------------------------------
def test_replaced_instance_keeps_its_data_volume(ctx: AwsContext, net: dict[str, str]) -> None:
    vol_addr, att_addr = 'aws_ebs_volume.data["0"]', 'aws_volume_attachment.data["0"]'
    volume = ebs_volume.KIND.create(ctx, vol_addr, {
        "availability_zone": "us-west-2a", "size": 100, "type": "gp3", "iops": 3000, "throughput": 125,
        "encrypted": True, "kms_key_id": None, "snapshot_id": None,
        "tags": {"Name": "test-data-0", "byoc:cluster": "test", "byoc:address": vol_addr},
    })
    a = KIND.create(ctx, ADDR, props(net))

    def attachment(instance_id: str) -> dict[str, Any]:
        return {"device_name": "/dev/sdf", "volume_id": volume.id, "instance_id": instance_id,
                "stop_instance_before_detaching": True}

    att = volume_attachment.KIND.create(ctx, att_addr, attachment(a.id))
    assert volume_attachment.KIND.discover(ctx) == [att]
    # replace: the attachment goes (the instance is stopped first), then A; B comes, and the volume
    order: list[str] = []
    record(ctx, order, "StopInstances", "DetachVolume", "TerminateInstances", "RunInstances", "AttachVolume")
    volume_attachment.KIND.delete(ctx, att)
    KIND.delete(ctx, a)
    b = KIND.create(ctx, ADDR, props(net, instance_type="c5.4xlarge"))
    att_b = volume_attachment.KIND.create(ctx, att_addr, attachment(b.id))
    assert order == ["StopInstances", "DetachVolume", "TerminateInstances", "RunInstances", "AttachVolume"]
    assert b.id != a.id
    assert ebs_volume.KIND.discover(ctx) == [volume]  # same id, same props
    assert volume_attachment.KIND.discover(ctx) == [att_b] and att_b.props["instance_id"] == b.id
    assert raw_volume(ctx, volume.id)["Attachments"][0]["InstanceId"] == b.id
    assert [x.id for x in KIND.discover(ctx)] == [b.id]


def test_concurrent_discovery_still_describes_volumes_once(ctx: AwsContext, net: dict[str, str]) -> None:
    import concurrent.futures as cf
    import threading

    from byoc.resources._volumes import cluster_volumes

    KIND.create(ctx, ADDR, props(net))
    calls: list[int] = []
    second = threading.Event()

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            second.wait(0.5)  # hold the first describe open: does another kind describe meanwhile?
        else:
            second.set()

    on(ctx, "before-call.ec2.DescribeVolumes", hook)
    with ctx.discovery_pass(), cf.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: cluster_volumes(ctx), range(3)))
    assert len(calls) == 1 and results[0] == results[1] == results[2] and len(results[0]) == 1


# -- the look before launch ----------------------------------------------------------------------
def at(net: dict[str, str], address: str) -> dict[str, Any]:
    """``props`` for the node at ``address``."""
    return props(net, tags={**props(net)["tags"], "byoc:address": address})


def test_the_look_before_launch_reads_its_address_alone_and_takes_no_lookalike(
    ctx: AwsContext, net: dict[str, str]
) -> None:
    # other nodes' instances: one whose address differs from ADDR only where ADDR has a character
    # the filter turns into a wildcard (AWS and moto both return it), one whose address only
    # starts like it
    lookalike = KIND.create(ctx, 'aws_instance.node_"0"_', at(net, 'aws_instance.node_"0"_'))
    KIND.create(ctx, 'aws_instance.node["00"]', at(net, 'aws_instance.node["00"]'))
    asked = params_of(ctx, "DescribeInstances")
    answered: list[str] = []
    on(ctx, "after-call.ec2.DescribeInstances", lambda parsed, **kw: answered.extend(
        tag_map(i)["byoc:address"] for r in parsed["Reservations"] for i in r["Instances"]))
    assert KIND.find(ctx, ADDR) is None
    [filters] = [p["Filters"] for p in asked]
    assert {"Name": "tag:byoc:address", "Values": ["aws_instance.node??0??"]} in filters
    assert answered == ['aws_instance.node_"0"_']  # narrowed here, not by the filter
    launched = params_of(ctx, "RunInstances")
    mine = KIND.create(ctx, ADDR, props(net))
    assert len(launched) == 1 and mine.id != lookalike.id and KIND.find(ctx, ADDR) == mine


def test_the_look_finds_what_a_crashed_run_launched_under_the_address(
    ctx: AwsContext, net: dict[str, str]
) -> None:
    from byoc.resources._instances import run_params

    # a run that died after RunInstances, before recording anything: the instance is there,
    # tagged with the address (a lookalike beside it)
    ctx.client("ec2").run_instances(**run_params(ctx, ADDR, props(net)), ClientToken="crashed-run")
    KIND.create(ctx, 'aws_instance.node_"0"_', at(net, 'aws_instance.node_"0"_'))
    [crashed] = [x.id for x in KIND.discover(ctx) if x.address == ADDR]
    launched = params_of(ctx, "RunInstances")
    live = KIND.create(ctx, ADDR, props(net))
    assert launched == [] and live.id == crashed and live.attr("state") == "running"


def test_looks_of_several_nodes_share_one_describe_and_each_gets_its_own(
    ctx: AwsContext, net: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from byoc.resources import _batch
    from tests.looks import look_all, wait_pending

    monkeypatch.setattr(_batch, "FEW", 0)  # past the first call, callers share (tests/test_batch.py)
    addresses = [f'aws_instance.node["{i}"]' for i in range(5)]
    made = {a: KIND.create(ctx, a, at(net, a)).id for a in addresses[1:]}  # node 0 has none yet
    asked = params_of(ctx, "DescribeInstances")

    def hold_first(**kw: Any) -> None:  # until the other four looks wait for the next call
        if len(asked) == 1:
            wait_pending(ctx, "ec2:instances-at", 4)

    on(ctx, "before-call.ec2.DescribeInstances", hold_first)
    found = look_all(KIND, ctx, addresses)
    assert {a: (f.id if f else None) for a, f in found.items()} == {addresses[0]: None, **made}
    assert all(found[a].address == a for a in made)  # type: ignore[union-attr]
    assert len(asked) == 2  # the first look, then one for the four that came meanwhile
    values = [f["Values"] for f in asked[1]["Filters"] if f["Name"] == "tag:byoc:address"]
    assert len(values) == 1 and len(values[0]) == 4
