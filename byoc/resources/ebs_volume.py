"""``aws_ebs_volume``: a node's data volume, kept when its instance is replaced (Terraform's
aws_ebs_volume). It holds data: the planner never deletes or replaces it without a flag.

Size grows (never shrinks), type/iops/throughput change in place through ModifyVolume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned, tag_specs, update_ec2_tags
from byoc.errors import CloudError
from byoc.model import Live, parse_address
from byoc.resources._ec2 import client_token, user_tags
from byoc.resources._snapshots import final_snapshot
from byoc.resources._volumes import (
    ENCRYPTION_TAG,
    ROOT_OF_TAG,
    cluster_volumes,
    describe_volume,
    encryption_props,
    encryption_tag,
    poll_volume,
    visible_tags,
    volume_arn,
    volumes_at,
)
from byoc.resources.base import ResourceType

#: types whose IOPS can be set, and the one whose throughput can
_IOPS_TYPES = frozenset({"gp3", "io1", "io2"})
_THROUGHPUT_TYPES = frozenset({"gp3"})
#: what AWS gives a gp3 volume created without Iops/Throughput (moto may omit them)
_GP3_DEFAULT_IOPS = 3000
_GP3_DEFAULT_THROUGHPUT = 125
_PERFORMANCE = frozenset({"size", "type", "iops", "throughput"})
#: a modification AWS is done with ("optimizing" already serves the new size and performance)
_MODIFIED = frozenset({"optimizing", "completed", "failed"})


class EbsVolume(ResourceType):
    kind = "aws_ebs_volume"
    service = "ec2"
    seconds = (10.0, 10.0)
    force_new = frozenset({"availability_zone", "encrypted", "kms_key_id", "snapshot_id"})
    holds_data = True
    snapshots = True
    #: a smaller size cannot be done in place: the planner treats it as a replacement
    grow_only = frozenset({"size"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        return [self._live(ctx, v) for v in cluster_volumes(ctx) if _is_data_volume(ctx, v)]

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look for the data volume tagged with ``address`` (not the cluster's others)."""
        return next((self._live(ctx, v) for v in volumes_at(ctx, address) if _is_data_volume(ctx, v)), None)

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        tags = {**props["tags"], ENCRYPTION_TAG: encryption_tag(props["encrypted"], props["kms_key_id"])}
        params: dict[str, Any] = {
            "AvailabilityZone": props["availability_zone"],
            "Size": int(props["size"]),
            "VolumeType": props["type"],
            "Encrypted": bool(props["encrypted"]),
            "TagSpecifications": tag_specs("volume", tags),
            "ClientToken": client_token(ctx, address, props),
        }
        if props["encrypted"] and props["kms_key_id"]:
            params["KmsKeyId"] = props["kms_key_id"]
        if props["snapshot_id"]:
            params["SnapshotId"] = props["snapshot_id"]
        params.update(_performance_params(props, send_all=True))
        volume_id = ec2.create_volume(**params)["VolumeId"]
        # real AWS: "creating" for seconds to minutes (longer from a snapshot)
        vol = poll_volume(
            ctx,
            volume_id,
            lambda v: v is not None and v.get("State") != "creating",
            what=f"{volume_id} to be available",
            address=address,
        )
        assert vol is not None
        if vol.get("State") != "available":
            try:
                self.delete(ctx, Live(address, self.kind, volume_id, props, {}))
                cleanup = "it was deleted"
            except Exception as exc:  # report the failure, not the clean-up
                cleanup = f"deleting it failed too: {exc}"
            raise CloudError(
                f"the volume went {vol.get('State')!r} instead of available ({cleanup})",
                address=address,
                aws_id=volume_id,
                code="VolumeFailed",
            )
        return self._live(ctx, vol, address)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        if "size" in changed and int(props["size"]) < int(live.props["size"]):
            raise CloudError(
                f"EBS volumes cannot shrink; the volume has {live.props['size']} GiB and "
                f"{props['size']} GiB were asked for. Keep the size (or grow it), or move the data "
                "to a new, smaller volume yourself",
                address=live.address,
                aws_id=live.id,
                code="VolumeCannotShrink",
            )
        if changed & _PERFORMANCE:
            self._modify(ctx, live, props, changed)
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
        vol = describe_volume(ctx, live.id)
        if vol is None:
            raise CloudError("the volume vanished while being updated", address=live.address,
                             aws_id=live.id, code="InvalidVolume.NotFound")
        return self._live(ctx, vol, live.address)

    def _modify(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> None:
        """One ModifyVolume with everything that changed, then wait until AWS has taken it
        (``optimizing`` already serves the new size and performance)."""
        ec2 = ctx.client("ec2")
        params: dict[str, Any] = {"VolumeId": live.id}
        if "size" in changed:
            params["Size"] = int(props["size"])
        if "type" in changed:
            params["VolumeType"] = props["type"]
        params.update(_performance_params(props, send_all="type" in changed, changed=changed))

        def asked() -> bool:
            """The latest modification is this one (its answer was lost, the SDK asked again)."""
            mod = state()
            return mod is not None and mod.get("ModificationState") != "failed" and all(
                mod.get(f"Target{k}") == v for k, v in params.items()
                if k in {"Size", "VolumeType", "Iops", "Throughput"})

        def state() -> dict[str, Any] | None:
            try:
                mods = ec2.describe_volumes_modifications(VolumeIds=[live.id])["VolumesModifications"]
            except Exception as exc:
                if error_code(exc) == "InvalidVolumeModification.NotFound":
                    return None
                raise
            return max(mods, key=lambda m: str(m.get("StartTime", ""))) if mods else None

        ctx.mutate(lambda: ec2.modify_volume(**params), already={"IncorrectModificationState"}, done=asked)

        try:
            mod = ctx.poll(
                state,
                lambda m: m is not None and m.get("ModificationState") in _MODIFIED,
                timeout=1800.0,
                what=f"the modification of {live.id}",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = live.address, live.id
            raise
        assert mod is not None
        if mod["ModificationState"] == "failed":
            raise CloudError(
                f"ModifyVolume failed: {mod.get('StatusMessage') or 'no reason given'}",
                address=live.address,
                aws_id=live.id,
                code="VolumeModificationFailed",
            )

    def snapshot(self, ctx: AwsContext, live: Live) -> str:
        return final_snapshot(ctx, live.address, live.id)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        try:
            # VolumeInUse: the detach of its attachment may still be settling
            ctx.retry(
                lambda: ec2.delete_volume(VolumeId=live.id),
                codes={"VolumeInUse"},
                timeout=min(ctx.retry_timeout, 300.0),
            )
        except Exception as exc:
            if not is_not_found(exc):
                raise
        poll_volume(
            ctx,
            live.id,
            lambda v: v is None,
            what=f"{live.id} to be deleted",
            address=live.address,
            deleting=True,
        )

    def _live(self, ctx: AwsContext, vol: Mapping[str, Any], address: str | None = None) -> Live:
        tags = user_tags(vol)
        encrypted, kms_key_id = encryption_props(vol)
        iops, throughput = _performance(vol)
        props = {
            "availability_zone": vol["AvailabilityZone"],
            "size": int(vol["Size"]),
            "type": vol["VolumeType"],
            "iops": iops,
            "throughput": throughput,
            "encrypted": encrypted,
            "kms_key_id": kms_key_id,
            "snapshot_id": vol.get("SnapshotId") or None,
            "tags": visible_tags(tags),
        }
        attrs = {"arn": volume_arn(ctx, vol["VolumeId"])}
        vol_id = vol["VolumeId"]
        return Live(address or address_of(tags, self.kind, vol_id), self.kind, vol_id, props, attrs)


def _is_data_volume(ctx: AwsContext, vol: Mapping[str, Any]) -> bool:
    tags = user_tags(vol)
    if not is_owned(ctx, tags):
        return False
    if ADDRESS_TAG not in tags:
        # a node's root volume has the cluster's tags and byoc:root-of but no byoc:address, and
        # goes with its instance; any other volume tagged for the cluster without one is unmanaged
        return ROOT_OF_TAG not in tags and not any(
            a.get("DeleteOnTermination") for a in vol.get("Attachments") or ())
    try:
        return parse_address(tags[ADDRESS_TAG])[0] == EbsVolume.kind
    except ValueError:
        return False


def _performance(vol: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(iops, throughput)`` as the blueprint sends them.

    The rule: iops only for types whose IOPS can be set (gp3, io1, io2), throughput only for
    gp3; both None for every other type (gp2's IOPS follow from its size, st1/sc1/standard have
    none to set), whatever AWS reports. A gp3 volume without Iops/Throughput in the describe
    (moto) has AWS's gp3 baseline, 3000 IOPS and 125 MiB/s.
    """
    vtype = vol.get("VolumeType")
    iops = int(vol["Iops"]) if vol.get("Iops") else None
    throughput = int(vol["Throughput"]) if vol.get("Throughput") else None
    if vtype == "gp3":
        return iops or _GP3_DEFAULT_IOPS, throughput or _GP3_DEFAULT_THROUGHPUT
    if vtype in _IOPS_TYPES:
        return iops, None
    return None, None


def _performance_params(
    props: Mapping[str, Any], *, send_all: bool, changed: set[str] | None = None
) -> dict[str, Any]:
    """Iops/Throughput for CreateVolume or ModifyVolume: only where the type takes them, only
    when set, and (for a modification of the same type) only when changed."""
    out: dict[str, Any] = {}
    if props["type"] in _IOPS_TYPES and props["iops"] is not None and (send_all or "iops" in (changed or ())):
        out["Iops"] = int(props["iops"])
    if (
        props["type"] in _THROUGHPUT_TYPES
        and props["throughput"] is not None
        and (send_all or "throughput" in (changed or ()))
    ):
        out["Throughput"] = int(props["throughput"])
    return out


KIND = EbsVolume()
