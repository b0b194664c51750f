"""The Proton nodes: per node an instance, a separate protected data volume, and its attachment.

Node i lives in AZ i mod len(AZs), in that AZ's private subnet — or, once its data volume exists,
in the volume's AZ, so adding an AZ to the spec never strands a node's data. The user data embeds the data
volume's id and the secret's ARN (never the password); both are references, so the script is a
``Join`` of rendered text and references.
"""

from __future__ import annotations

from typing import Any

from byoc.blueprint.base import Builder, Node, log_group_name
from byoc.blueprint.iam import Identity, metrics_namespace
from byoc.blueprint.network import Network
from byoc.blueprint.storage import Storage
from byoc.model import Join, Ref, Sorted
from byoc.spec.ec2types import ebs_optimized

DATA_DEVICE = "/dev/sdf"
# stand-ins rendered into the script and then replaced by references (valid by the renderer's rules)
_VOLUME_SENTINEL = "vol-0feedfacefeedface"


def _secret_sentinel(b: Builder) -> str:
    return f"arn:{b.partition}:secretsmanager:{b.region}:000000000000:secret:byoc-sentinel-AbCdEf"


def node_keys(count: int) -> list[str]:
    return [str(i) for i in range(count)]


def build_nodes(b: Builder, net: Network, storage: Storage, identity: Identity) -> list[Node]:
    c = b.spec.data["compute"]
    azs = list(b.spec.availability_zones)
    kms = storage.kms_key if storage.encrypted else None
    nodes = []
    pinned = dict(b.facts.node_azs)
    snapshots = dict(b.facts.node_snapshots)
    for i, key in enumerate(node_keys(c["instance_count"])):
        # a node whose data volume exists stays in that volume's AZ (if the spec still has it);
        # new nodes go round-robin over the AZs
        az = pinned[key] if pinned.get(key) in azs else azs[i % len(azs)]
        volume = b.add("aws_ebs_volume", "data", key, {
            "availability_zone": az,
            "size": c["disk_size_gb"],
            "type": "gp3",
            "iops": 3000,
            "throughput": 125,
            "encrypted": storage.encrypted,
            "kms_key_id": kms,
            "snapshot_id": snapshots.get(key),
        }, label=f"{b.cluster}-data-{key}", protected=True)
        instance = b.add("aws_instance", "node", key, {
            "ami": b.facts.ami,
            "instance_type": c["instance_type"],
            "subnet_id": Ref(net.private[az]),
            "vpc_security_group_ids": Sorted((Ref(net.node_sg),)),
            "iam_instance_profile": Ref(identity.profile, "name"),
            "key_name": c.get("ssh_key_name"),
            "user_data": user_data(b, key, volume, storage.secret),
            "monitoring": bool(c["detailed_monitoring"]),
            # every type that supports it; AWS refuses it for the few that do not (byoc.spec.ec2types)
            "ebs_optimized": ebs_optimized(c["instance_type"]),
            "metadata_options": {
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 2,
                "instance_metadata_tags": "disabled",
            },
            "root_block_device": {
                "volume_size": c["root_volume_size_gb"],
                "volume_type": "gp3",
                "encrypted": storage.encrypted,
                "kms_key_id": kms,
                "delete_on_termination": True,
            },
            "spot": bool(c.get("spot")),
        }, label=f"{b.cluster}-node-{key}")
        b.add("aws_volume_attachment", "data", key, {
            "device_name": DATA_DEVICE,
            "volume_id": Ref(volume),
            "instance_id": Ref(instance),
            "stop_instance_before_detaching": True,
        }, tagged=False)
        nodes.append(Node(key, az, instance, volume))
    return nodes


def user_data(b: Builder, key: str, volume: str, secret: str) -> Join:
    """The node's cloud-init script, with the volume id and secret ARN as references."""
    from byoc.userdata import NodeConfig, render_user_data

    cluster = b.spec.data["cluster"]
    text = render_user_data(NodeConfig(
        cluster=b.cluster,
        region=b.region,
        node=key,
        image=cluster["image"],
        version=cluster["proton_version"],
        data_volume_id=_VOLUME_SENTINEL,
        secret_arn=_secret_sentinel(b),
        log_group=log_group_name(b.cluster),
        metrics_namespace=metrics_namespace(b.cluster),
    ))
    parts: list[Any] = []
    for i, chunk in enumerate(text.split(_VOLUME_SENTINEL)):
        if i:
            parts.append(Ref(volume))
        for j, piece in enumerate(chunk.split(_secret_sentinel(b))):
            if j:
                parts.append(Ref(secret, "arn"))
            parts.append(piece)
    return Join(tuple(p for p in parts if p != ""))
