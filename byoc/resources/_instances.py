"""``aws_instance``'s helpers: reading instances back into the blueprint's shape (one paginated
DescribeInstances, the root volumes from the node kinds' shared DescribeVolumes), and building the
RunInstances request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import ADDRESS_TAG, owned_filter, tag_list, tag_specs
from byoc.errors import CloudError
from byoc.resources._batch import Batcher, batcher
from byoc.resources._ec2 import ADDRESS_BATCH, address_filter, at_addresses, ec2_arn, user_tags
from byoc.resources._volumes import (
    BATCH,
    ENCRYPTION_TAG,
    MARKET_TAG,
    ROOT_OF_TAG,
    USER_DATA_TAG,
    encryption_props,
    encryption_tag,
    visible_tags,
    volumes_by_id,
)
from byoc.spec.ec2types import ebs_optimized_support

#: used when the AMI cannot be described (AL2023 and most Linux AMIs boot from it)
DEFAULT_ROOT_DEVICE = "/dev/xvda"

#: instance states discovery reports (shutting-down and terminated are gone or going)
LIVE_STATES = ("pending", "running", "stopping", "stopped")
#: what AWS gives an instance launched without MetadataOptions
_METADATA_DEFAULTS = {"HttpEndpoint": "enabled", "HttpTokens": "optional",
                      "HttpPutResponseHopLimit": 1, "InstanceMetadataTags": "disabled"}

#: ids per DescribeInstanceStatus (AWS takes at most 100)
STATUS_BATCH = 100

Described = tuple[str, dict[str, Any]]  # (the reservation's OwnerId, the instance)


def describe(ctx: AwsContext, filters: list[dict[str, Any]]) -> list[Described]:
    """Instances in the live states matching ``filters`` (one paginated DescribeInstances)."""
    states = {"Name": "instance-state-name", "Values": list(LIVE_STATES)}
    pages = ctx.client("ec2").get_paginator("describe_instances").paginate(Filters=[*filters, states])
    return [(r.get("OwnerId", ""), i) for page in pages for r in page["Reservations"] for i in r["Instances"]]


def cluster_instances(ctx: AwsContext) -> list[Described]:
    """The cluster's live instances: one DescribeInstances per discovery pass, shared by the
    instance kind and the target-group attachments (which map instance ids to addresses)."""
    return ctx.memo("ec2", "describe_instances_cluster", lambda: describe(ctx, owned_filter(ctx)))


def _instances_named(ctx: AwsContext, ids: list[str]) -> dict[str, Described]:
    """Instances by id, in any state, in one call: an ``instance-id`` filter answers the ids AWS
    knows and skips the rest (one not visible yet just after RunInstances fails nothing), where
    ``InstanceIds`` would refuse the whole call."""
    pages = ctx.client("ec2").get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-id", "Values": ids}]
    )
    return {i["InstanceId"]: (r.get("OwnerId", ""), i)
            for page in pages for r in page["Reservations"] for i in r["Instances"]}


def get(ctx: AwsContext, instance_id: str) -> Described | None:
    """One instance in any state; None when AWS does not know it (yet, or any more). Batched
    with the other instances read at that moment (every node waiting to be running: one call)."""
    reader = batcher(ctx, "ec2:instances",
                     lambda: Batcher(lambda ids: _instances_named(ctx, ids), size=BATCH))
    try:
        return reader.get(instance_id)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def _states_named(ctx: AwsContext, ids: list[str]) -> dict[str, str]:
    """{id: state} of the instances among ``ids`` that AWS knows, in any state, from
    DescribeInstanceStatus (a status, not a whole description). An id AWS does not know (yet, or
    any more) refuses the whole call: a batch so refused is asked again one id at a time."""
    ec2 = ctx.client("ec2")
    try:
        statuses = ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)["InstanceStatuses"]
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        if len(ids) == 1:
            return {}
        return {k: v for i in ids for k, v in _states_named(ctx, [i]).items()}
    return {s["InstanceId"]: str(s["InstanceState"]["Name"]) for s in statuses}


def state_now(ctx: AwsContext, instance_id: str) -> str | None:
    """The instance's state now (None when AWS does not know it), read with the other instances'
    states asked at that moment: for callers that need the state alone (a volume attachment)."""
    reader = batcher(ctx, "ec2:instance-states",
                     lambda: Batcher(lambda ids: _states_named(ctx, ids), size=STATUS_BATCH))
    return reader.get(instance_id)


def at_address(ctx: AwsContext, address: str) -> list[Described]:
    """A fresh look (no memo) for the cluster's live instances tagged with ``address`` (each
    node's create looks for one an interrupted run launched), read in one call with the other
    addresses looked at in that moment: an address filter, so a look reads no other node's."""
    def read(addresses: list[str]) -> dict[str, list[Described]]:
        found = describe(ctx, address_filter(ctx, addresses))
        return at_addresses(found, addresses, lambda item: user_tags(item[1]))

    reader = batcher(ctx, "ec2:instances-at", lambda: Batcher(read, size=ADDRESS_BATCH))
    return reader.get(address) or []


def state_of(item: Described | None) -> str | None:
    return None if item is None else str(item[1]["State"]["Name"])


def profile_name(arn: str) -> str:
    """``arn:aws:iam::1:instance-profile/path/name`` → ``name``."""
    return arn.rsplit("/", 1)[-1]


def root_mapping(inst: Mapping[str, Any], address: str, vols: Mapping[str, Any]) -> dict[str, Any] | None:
    """The block device mapping of the root volume: the one on RootDeviceName, else (moto reports
    /dev/sda1 whatever was launched) the one whose volume byoc tagged as this instance's root."""
    mappings = [m for m in inst.get("BlockDeviceMappings") or () if (m.get("Ebs") or {}).get("VolumeId")]
    root = next((m for m in mappings if m.get("DeviceName") == inst.get("RootDeviceName")), None)
    if root is None:
        root = next(
            (m for m in mappings
             if user_tags(vols.get(m["Ebs"]["VolumeId"], {})).get(ROOT_OF_TAG) == address),
            None,
        )
    return dict(root) if root else None


def with_volumes(
    ctx: AwsContext, items: list[Described], known: list[dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """The volumes of ``items``' block device mappings: from ``known`` (the shared describe),
    and the ones it lacks (an untagged root volume) in one more call."""
    vols = {v["VolumeId"]: v for v in known or ()}
    wanted = {
        m["Ebs"]["VolumeId"]
        for _, inst in items
        for m in inst.get("BlockDeviceMappings") or ()
        if (m.get("Ebs") or {}).get("VolumeId")
    }
    missing = wanted - set(vols)
    if missing:
        vols.update(volumes_by_id(ctx, missing))
    return vols


def launched_root(inst: Mapping[str, Any], address: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The root volume of an instance just launched from ``props``, as reading it back would show
    it (its size, type and encryption are what was asked; encryption is reported as asked anyway,
    see ``encryption_props``), under the id the instance's block device mapping gives: the
    create's read-back needs no DescribeVolumes. [] when the mapping does not show it yet."""
    ids = [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings") or ()
           if (m.get("Ebs") or {}).get("VolumeId")]
    if len(ids) != 1:
        return []
    root = props["root_block_device"]
    asked = encryption_tag(root["encrypted"], root.get("kms_key_id"))
    return [{
        "VolumeId": ids[0],
        "Size": int(root["volume_size"]),
        "VolumeType": root["volume_type"],
        "Encrypted": bool(root["encrypted"]),
        "KmsKeyId": root.get("kms_key_id"),
        "Tags": tag_list({ROOT_OF_TAG: address, ENCRYPTION_TAG: asked}),
    }]


def props_and_attrs(
    ctx: AwsContext,
    item: Described,
    address: str,
    profile: str | None,
    vols: Mapping[str, dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The blueprint's shape (and the computed attributes) of one described instance."""
    owner, inst = item
    tags = user_tags(inst)
    digest = tags.get(USER_DATA_TAG)
    metadata = {**_METADATA_DEFAULTS, **(inst.get("MetadataOptions") or {})}
    root = root_mapping(inst, address, vols)
    root_volume = vols.get(root["Ebs"]["VolumeId"]) if root else None
    root_device: dict[str, Any] | None = None
    if root is not None and root_volume is not None:
        encrypted, kms_key_id = encryption_props(root_volume)
        root_device = {
            "volume_size": int(root_volume["Size"]),
            "volume_type": root_volume["VolumeType"],
            "encrypted": encrypted,
            "kms_key_id": kms_key_id,
            "delete_on_termination": bool(root["Ebs"].get("DeleteOnTermination")),
        }
    if "InstanceLifecycle" in inst:
        spot = inst["InstanceLifecycle"] == "spot"
    else:  # AWS leaves it out for on-demand instances; the tag covers a double that does too
        spot = tags.get(MARKET_TAG) == "spot"
    props = {
        "ami": inst["ImageId"],
        "instance_type": inst["InstanceType"],
        "subnet_id": inst.get("SubnetId"),
        "vpc_security_group_ids": sorted(g["GroupId"] for g in inst.get("SecurityGroups") or ()),
        "iam_instance_profile": profile,
        "key_name": inst.get("KeyName") or None,
        # user data is never read back: its hash was recorded at launch
        "user_data": f"sha256:{digest}" if digest else None,
        "monitoring": (inst.get("Monitoring") or {}).get("State") in {"enabled", "pending"},
        # a type that is EBS-optimised by default is so whatever the flag says (AWS reports the
        # flag false when the launch did not ask): the effective value, so it never shows as a diff
        "ebs_optimized": bool(inst.get("EbsOptimized"))
        or ebs_optimized_support(inst["InstanceType"]) == "default",
        "metadata_options": {
            "http_endpoint": metadata["HttpEndpoint"],
            "http_tokens": metadata["HttpTokens"],
            "http_put_response_hop_limit": int(metadata["HttpPutResponseHopLimit"]),
            "instance_metadata_tags": metadata["InstanceMetadataTags"],
        },
        "root_block_device": root_device,
        "spot": spot,
        "tags": visible_tags(tags),
    }
    attrs = {
        "arn": ec2_arn(ctx, owner, f"instance/{inst['InstanceId']}"),
        "private_ip": inst.get("PrivateIpAddress"),
        "availability_zone": (inst.get("Placement") or {}).get("AvailabilityZone"),
        "root_volume_id": root["Ebs"]["VolumeId"] if root else None,
        "state": inst["State"]["Name"],
    }
    return props, attrs


# -- the launch request ------------------------------------------------------------------------
def run_params(ctx: AwsContext, address: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """RunInstances' parameters (all but the ClientToken) for one node."""
    if props.get("ebs_optimized") and ebs_optimized_support(props["instance_type"]) == "unsupported":
        # AWS refuses the launch (moto does not): say so before asking
        raise CloudError(f"{props['instance_type']} cannot be EBS-optimized: set ebs_optimized false",
                         address=address, code="Unsupported")
    root = props["root_block_device"]
    ebs: dict[str, Any] = {
        "VolumeSize": int(root["volume_size"]),
        "VolumeType": root["volume_type"],
        "Encrypted": bool(root["encrypted"]),
        "DeleteOnTermination": bool(root["delete_on_termination"]),
    }
    if root["encrypted"] and root.get("kms_key_id"):
        ebs["KmsKeyId"] = root["kms_key_id"]
    tags = dict(props["tags"])
    instance_tags = {**tags, USER_DATA_TAG: sha256(props["user_data"] or ""),
                     MARKET_TAG: "spot" if props["spot"] else "on-demand"}
    volume_tags = {
        **root_user_tags(tags),
        ROOT_OF_TAG: address,
        ENCRYPTION_TAG: encryption_tag(root["encrypted"], root.get("kms_key_id")),
    }
    meta = props["metadata_options"]
    params: dict[str, Any] = {
        "MinCount": 1,
        "MaxCount": 1,
        "ImageId": props["ami"],
        "InstanceType": props["instance_type"],
        "SubnetId": props["subnet_id"],
        "SecurityGroupIds": list(props["vpc_security_group_ids"]),
        "MetadataOptions": metadata_params(meta),
        "Monitoring": {"Enabled": bool(props["monitoring"])},
        "EbsOptimized": bool(props.get("ebs_optimized")),
        "BlockDeviceMappings": [{"DeviceName": root_device_name(ctx, props["ami"]), "Ebs": ebs}],
        "TagSpecifications": tag_specs("instance", instance_tags) + tag_specs("volume", volume_tags),
    }
    if props["iam_instance_profile"]:
        params["IamInstanceProfile"] = {"Name": props["iam_instance_profile"]}
    if props["key_name"]:
        params["KeyName"] = props["key_name"]
    if props["user_data"]:
        params["UserData"] = props["user_data"]  # boto3 base64-encodes it
    if props["spot"]:
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
        }
    return params


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def metadata_params(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "HttpEndpoint": meta["http_endpoint"],
        "HttpTokens": meta["http_tokens"],
        "HttpPutResponseHopLimit": int(meta["http_put_response_hop_limit"]),
        "InstanceMetadataTags": meta["instance_metadata_tags"],
    }


def root_user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The instance's tags as its root volume carries them (no ``byoc:address``)."""
    return {k: v for k, v in tags.items() if k != ADDRESS_TAG}


def root_device_name(ctx: AwsContext, ami: str) -> str:
    """The AMI's root device (the mapping must name it to size the root volume), read once for
    all the nodes of a run."""
    def read() -> str:
        try:
            images = ctx.client("ec2").describe_images(ImageIds=[ami])["Images"]
        except ClientError:
            return DEFAULT_ROOT_DEVICE
        return str(images[0].get("RootDeviceName") or DEFAULT_ROOT_DEVICE) if images else DEFAULT_ROOT_DEVICE

    return ctx.once("ec2", f"root-device:{ami}", read)
