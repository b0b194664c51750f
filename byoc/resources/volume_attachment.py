"""``aws_volume_attachment``: a data volume attached to its node (Terraform's aws_volume_attachment).

Not taggable: discovered from the data volumes' attachments (``aws_ebs_volume.data["0"]`` is
attached as ``aws_volume_attachment.data["0"]``). Detaching first stops the instance cleanly so
Proton can flush before its disk goes away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import ADDRESS_TAG, is_owned, tag_list
from byoc.errors import CloudError
from byoc.model import Live, make_address, parse_address
from byoc.resources import _instances as read
from byoc.resources._ec2 import user_tags
from byoc.resources._volumes import (
    STOP_TAG,
    attachment_to,
    cluster_volumes,
    describe_volume,
    poll_volume,
    volumes_at,
)
from byoc.resources.base import ResourceType

_VOLUME_KIND = "aws_ebs_volume"
#: attachment states that still hold the volume on the instance
_HELD = frozenset({"attaching", "attached", "detaching", "busy"})
#: DetachVolume errors that mean "not attached (any more)"
_DETACHED_CODES = frozenset({"IncorrectState", "InvalidAttachment.NotFound"})


class VolumeAttachment(ResourceType):
    kind = "aws_volume_attachment"
    service = "ec2"
    seconds = (10.0, 40.0)
    force_new = frozenset({"device_name", "volume_id", "instance_id"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        out = []
        for vol in cluster_volumes(ctx):
            address = _attachment_address(ctx, vol)
            att = attachment_to(vol)
            if address is not None and att is not None:
                out.append(self._live(vol, att, address))
        return out

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look at the attachment of the data volume this address names."""
        _, name, key = parse_address(address)
        for vol in volumes_at(ctx, make_address(_VOLUME_KIND, name, key)):
            att = attachment_to(vol)
            if att is not None and _attachment_address(ctx, vol) == address:
                return self._live(vol, att, address)
        return None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        ec2 = ctx.client("ec2")
        volume_id, instance_id = props["volume_id"], props["instance_id"]
        live_id = f"{volume_id}:{instance_id}"
        # the volume and the instance are read at the same time: independent
        vol, instance_state = ctx.together(lambda: describe_volume(ctx, volume_id),
                                           lambda: self._instance_state(ctx, instance_id))
        current = attachment_to(vol)
        if current is not None and current.get("InstanceId") != instance_id:
            raise CloudError(
                f"volume {volume_id} is attached to instance {current.get('InstanceId')}, not to "
                f"{instance_id}: detach it from {current.get('InstanceId')} first (or remove that "
                "instance) and run again",
                address=address,
                aws_id=volume_id,
                code="VolumeInUse",
            )
        if current is None:  # else: attached to this instance already (an earlier run): adopt
            # IncorrectState: the volume is still leaving its previous instance, or the instance
            # is still pending; both settle within seconds
            # VolumeInUse: attached already, to this instance if an earlier answer was lost
            ctx.mutate(
                lambda: ctx.retry(
                    lambda: ec2.attach_volume(Device=props["device_name"], InstanceId=instance_id,
                                              VolumeId=volume_id),
                    codes={"IncorrectState"},
                    timeout=min(ctx.retry_timeout, 300.0),
                ),
                already={"VolumeInUse", "InvalidParameterValue"},
                done=lambda: attachment_to(describe_volume(ctx, volume_id), instance_id) is not None,
            )
        # real AWS: "attaching" for seconds
        vol = poll_volume(
            ctx,
            volume_id,
            lambda v: attachment_to(v, instance_id, {"attached"}) is not None,
            what=f"{volume_id} to be attached to {instance_id}",
            address=address,
            aws_id=live_id,
        )
        assert vol is not None
        self._set_stop(ctx, vol, bool(props["stop_instance_before_detaching"]))
        if instance_state in {"stopping", "stopped"}:
            self._start_if_stopped(ctx, instance_id, address)
        att = attachment_to(vol, instance_id, {"attached"})
        assert att is not None
        return self._live(vol, att, address, bool(props["stop_instance_before_detaching"]))

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        if "stop_instance_before_detaching" in changed:
            # nothing to change in AWS: only the setting byoc keeps on the volume
            vol = describe_volume(ctx, live.props["volume_id"])
            self._set_stop(ctx, vol, bool(props["stop_instance_before_detaching"]))
        return Live(live.address, self.kind, live.id, {**live.props, **_props(props)}, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        volume_id, instance_id = live.props["volume_id"], live.props["instance_id"]
        stop = bool(live.props.get("stop_instance_before_detaching", True))
        vol, instance_state = ctx.together(
            lambda: describe_volume(ctx, volume_id),
            lambda: self._instance_state(ctx, instance_id) if stop else None,
        )
        att = attachment_to(vol, instance_id, _HELD)
        if att is None:
            return  # already detached (or the volume is gone)
        if att["State"] != "detaching":
            if stop:
                self._stop(ctx, instance_id, live.address, instance_state)
            try:
                ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id)  # moto needs InstanceId
            except Exception as exc:
                if is_not_found(exc):
                    return
                if error_code(exc) not in _DETACHED_CODES:
                    raise
                if attachment_to(describe_volume(ctx, volume_id), instance_id, _HELD) is not None:
                    raise  # refused for another reason while still attached
                return
        # real AWS: "detaching" for a while; the volume is free once it is "available"
        poll_volume(
            ctx,
            volume_id,
            lambda v: attachment_to(v, instance_id, _HELD) is None,
            what=f"{volume_id} to be detached from {instance_id}",
            address=live.address,
            aws_id=live.id,
        )

    # -- helpers -------------------------------------------------------------------------------
    def _live(
        self, vol: Mapping[str, Any], att: Mapping[str, Any], address: str, stop: bool | None = None
    ) -> Live:
        if stop is None:
            stop = user_tags(vol).get(STOP_TAG) != "false"
        props = _props(
            {
                "device_name": att["Device"],
                "volume_id": vol["VolumeId"],
                "instance_id": att["InstanceId"],
                "stop_instance_before_detaching": stop,
            }
        )
        return Live(address, self.kind, f"{vol['VolumeId']}:{att['InstanceId']}", props, {})

    def _set_stop(self, ctx: AwsContext, vol: Mapping[str, Any] | None, stop: bool) -> None:
        """Record ``stop_instance_before_detaching`` on the volume (absent tag = True)."""
        if vol is None:
            return
        has = user_tags(vol).get(STOP_TAG)
        ec2 = ctx.client("ec2")
        if stop and has is not None:
            ec2.delete_tags(Resources=[vol["VolumeId"]], Tags=[{"Key": STOP_TAG}])
        elif not stop and has != "false":
            ec2.create_tags(Resources=[vol["VolumeId"]], Tags=tag_list({STOP_TAG: "false"}))

    def _instance_state(self, ctx: AwsContext, instance_id: str) -> str | None:
        return read.state_now(ctx, instance_id)

    def _wait_instance(self, ctx: AwsContext, instance_id: str, done: set[str], address: str) -> None:
        try:
            ctx.poll(
                lambda: self._instance_state(ctx, instance_id),
                lambda s: s is None or s in done or s in {"shutting-down", "terminated"},
                what=f"{instance_id} to be {'/'.join(sorted(done))}",
            )
        except CloudError as exc:
            exc.address, exc.aws_id = address, instance_id
            raise

    def _stop(self, ctx: AwsContext, instance_id: str, address: str, state: str | None) -> None:
        """Stop the instance (in ``state``, just read) cleanly and wait until it is stopped (a
        clean shutdown lets Proton flush to the data volume before it is detached)."""
        if state in {"pending", "running"}:
            try:
                ctx.client("ec2").stop_instances(InstanceIds=[instance_id])
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        if state in {"pending", "running", "stopping"}:
            self._wait_instance(ctx, instance_id, {"stopped"}, address)

    def _start_if_stopped(self, ctx: AwsContext, instance_id: str, address: str) -> None:
        """An instance stopped to detach an earlier attachment (a changed device name) runs
        again once its volume is back."""
        state = self._instance_state(ctx, instance_id)
        if state == "stopping":
            self._wait_instance(ctx, instance_id, {"stopped"}, address)
            state = self._instance_state(ctx, instance_id)
        if state == "stopped":
            ctx.client("ec2").start_instances(InstanceIds=[instance_id])
            self._wait_instance(ctx, instance_id, {"running"}, address)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "device_name": props["device_name"],
        "volume_id": props["volume_id"],
        "instance_id": props["instance_id"],
        "stop_instance_before_detaching": bool(props["stop_instance_before_detaching"]),
    }


def _attachment_address(ctx: AwsContext, vol: Mapping[str, Any]) -> str | None:
    """``aws_volume_attachment.<name>["<key>"]`` for an owned data volume, else None."""
    tags = user_tags(vol)
    if not is_owned(ctx, tags) or ADDRESS_TAG not in tags:  # a root volume, or an unmanaged one
        return None
    try:
        kind, name, key = parse_address(tags[ADDRESS_TAG])
    except ValueError:
        return None
    return make_address(VolumeAttachment.kind, name, key) if kind == _VOLUME_KIND else None


KIND = VolumeAttachment()
