"""What every part of the blueprint shares: the builder that names and tags resources, facts, and
the handles one part passes to another (a node, the balancer, the log group's name).

Facts are the few values a pure blueprint cannot compute from the spec (the pinned AMI id). The
parts (network, storage, iam, nodes, lb, monitoring) import this module, never it them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG
from byoc.model import Ref, Resource, make_address, partition
from byoc.spec import Spec

#: the AMI id used when nothing better is known (plans of a cluster that was never applied
#: show the real one once resolved; tests use this placeholder)
PLACEHOLDER_AMI = "ami-00000000000000000"
#: the account id used when the real one is not known (the pure tests; a plan asks AWS for it)
PLACEHOLDER_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class Facts:
    """Values resolved outside the pure blueprint: the pinned AMI, the AZ of each node whose
    data volume already exists (a volume cannot move between AZs, so its node stays with it), and
    the snapshot each node's data volume is (to be) created from — a create-time fact: the live
    one, so a restored volume is not replaced later, or a backup's, for a restore; and the AWS
    account (the log bucket's policy names it)."""

    ami: str = PLACEHOLDER_AMI
    node_azs: tuple[tuple[str, str], ...] = ()
    node_snapshots: tuple[tuple[str, str], ...] = ()
    account: str = PLACEHOLDER_ACCOUNT


@dataclass(frozen=True)
class Node:
    """One Proton node's addresses (built by ``nodes``; the balancer and the alarms use them)."""

    key: str
    az: str
    instance: str
    volume: str


@dataclass(frozen=True)
class Balancer:
    """The load balancer's addresses (built by ``lb``; the alarms use them)."""

    lb: str
    type: str
    target_groups: dict[int, str]  # port -> address
    listeners: dict[int, str]


def log_group_name(cluster: str) -> str:
    """The log group the nodes ship to (made by ``monitoring``, named in each node's user data)."""
    return f"/aws/proton/{cluster}"


def rotation_function_name(cluster: str) -> str:
    """The password rotation function's name (made by ``rotation``; its role has the same name)."""
    return f"{cluster}-password-rotation"


def rotation_enabled(spec: Spec) -> bool:
    """``security.password_rotation.enabled``: Secrets Manager rotates the admin password."""
    return bool((spec.data["security"].get("password_rotation") or {}).get("enabled"))


#: the address of the KMS key byoc creates when ``security.encryption.create_kms_key`` is set
CLUSTER_KEY = make_address("aws_kms_key", "main", None)


def created_key_arn(spec: Spec) -> Ref | None:
    """A reference to the ARN of the key byoc creates for the cluster (made by ``storage``), or
    None when the spec does not create one (AWS-managed keys, or the user's own ``kms_key_arn``)."""
    enc = spec.data["security"]["encryption"]
    return Ref(CLUSTER_KEY, "arn") if enc["enabled"] and enc.get("create_kms_key") else None


class Builder:
    """Collects resources; gives each its address, ``Name`` and ownership tags."""

    def __init__(self, spec: Spec, facts: Facts) -> None:
        self.spec = spec
        self.facts = facts
        self.cluster = spec.cluster_name
        self.region = spec.region
        self.user_tags: Mapping[str, str] = spec.data.get("tags") or {}
        self.nodes: list[Resource] = []

    @property
    def partition(self) -> str:
        return partition(self.region)

    def tags(self, address: str, name: str) -> dict[str, str]:
        return {**self.user_tags, "Name": name, CLUSTER_TAG: self.cluster, ADDRESS_TAG: address}

    def add(
        self,
        kind: str,
        name: str,
        key: str | None,
        props: dict[str, Any],
        *,
        label: str | None = None,
        tagged: bool = True,
        depends_on: tuple[str, ...] = (),
        protected: bool = False,
    ) -> str:
        address = make_address(kind, name, key)
        if tagged:
            label = label or "-".join(p for p in (self.cluster, name, key) if p)
            props = {**props, "tags": self.tags(address, label)}
        self.nodes.append(Resource(address, kind, props, depends_on, protected))
        return address
