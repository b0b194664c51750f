"""``aws_instance``: one Proton node (Terraform's aws_instance), its data on a separate volume.

User data is compared by its sha256, recorded at launch in a tag byoc keeps for itself; the
root volume is tagged as the instance's root (not with ``byoc:address``). Security groups,
metadata options, the instance profile, monitoring and tags change in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_not_found
from byoc.aws.tags import address_of, is_owned, update_ec2_tags
from byoc.errors import CloudError
from byoc.model import UNKNOWN, Live, canonical_json
from byoc.resources import _instances as read
from byoc.resources._ec2 import client_token, user_tags
from byoc.resources._shapes import block
from byoc.resources._volumes import cluster_volumes
from byoc.resources.base import ResourceType


class Instance(ResourceType):
    kind = "aws_instance"
    service = "ec2"
    seconds = (40.0, 60.0)
    force_new = frozenset(
        {"ami", "instance_type", "subnet_id", "key_name", "user_data", "root_block_device", "spot",
         # EbsOptimized changes only on a stopped instance; it differs only on types where
         # it is not the default (previous generations)
         "ebs_optimized"}
    )
    #: AWS refuses to delete a security group an instance still uses
    pins = frozenset({"vpc_security_group_ids"})
    hashed = frozenset({"user_data"})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``metadata_options`` and ``root_block_device`` as blocks; ``spot`` as the provider's
        ``instance_market_options`` (a spot market block, or none); ``user_data`` as byoc compares
        it (its sha256, where the provider shows a hash too)."""
        out = {k: block(v) if k in ("metadata_options", "root_block_device") else v
               for k, v in values.items() if k != "spot"}
        if "spot" in values:
            spot = values["spot"]
            out["instance_market_options"] = UNKNOWN if spot is UNKNOWN else (
                [{"market_type": "spot", "spot_options": []}] if spot else [])
        return out

    def discover(self, ctx: AwsContext) -> list[Live]:
        return self._lives(ctx, read.cluster_instances(ctx), cluster_volumes(ctx))

    def find(self, ctx: AwsContext, address: str) -> Live | None:
        """A fresh look (no memo) for the instance tagged with ``address``."""
        return next(iter(self._lives(ctx, read.at_address(ctx, address), None)), None)

    # -- create ------------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        # a run that crashed after RunInstances; and the AMI's root device, meanwhile
        existing, params = ctx.together(lambda: self.find(ctx, address),
                                        lambda: read.run_params(ctx, address, props))
        if existing is not None:
            return self._adopt(ctx, existing, props)
        ec2 = ctx.client("ec2")
        attempts: list[int] = []

        def run() -> dict[str, Any]:
            # A fresh token per attempt: an attempt AWS refused launched nothing, and AWS may
            # answer a repeated token with the refusal it remembers.
            attempts.append(1)
            token = client_token(ctx, address, props, salt=str(len(attempts)))
            return dict(ec2.run_instances(**params, ClientToken=token))

        # IAM is eventually consistent: a new instance profile is refused for a few seconds.
        resp = ctx.retry(
            run,
            codes={"InvalidParameterValue"},
            match=_is_profile_propagation,
            timeout=min(ctx.retry_timeout, 300.0),
        )
        instance_id = resp["Instances"][0]["InstanceId"]
        found = self._wait_running(ctx, instance_id, address)
        return self._live_of(ctx, found, address, read.launched_root(found[1], address, props))

    def _adopt(self, ctx: AwsContext, existing: Live, props: Mapping[str, Any]) -> Live:
        """Carry on with an instance an interrupted run launched under this address."""
        state = existing.attrs.get("state")
        if state in {"stopping", "stopped"}:
            self._wait_state(ctx, existing.id, existing.address, {"stopped"})
            ctx.client("ec2").start_instances(InstanceIds=[existing.id])
        if state != "running":
            self._wait_running(ctx, existing.id, existing.address)
            existing = self._read(ctx, existing.id, existing.address)  # the root volume is known now
        want = {**props, "user_data": "sha256:" + read.sha256(props["user_data"] or "")}
        changed = {k for k in want if canonical_json(want[k]) != canonical_json(existing.props.get(k))}
        if changed & self.force_new:
            raise CloudError(
                f"an instance for this address already exists with different "
                f"{', '.join(sorted(changed & self.force_new))}; run `byoc plan` again",
                address=existing.address, aws_id=existing.id, code="Conflict",
            )
        if changed:
            return self.update(ctx, existing, props, changed)
        return self._read(ctx, existing.id, existing.address)

    # -- update ------------------------------------------------------------------------------
    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        ec2 = ctx.client("ec2")
        if "vpc_security_group_ids" in changed:
            ec2.modify_instance_attribute(InstanceId=live.id, Groups=list(props["vpc_security_group_ids"]))
        if "metadata_options" in changed:
            meta = read.metadata_params(props["metadata_options"])
            ec2.modify_instance_metadata_options(InstanceId=live.id, **meta)
            self._poll(ctx, live.id, live.address, "to apply its metadata options",
                       lambda i: i is None or (i[1].get("MetadataOptions") or {}).get("State") != "pending")
        if "iam_instance_profile" in changed:
            self._set_profile(ctx, live.id, props["iam_instance_profile"])
        if "monitoring" in changed:
            if props["monitoring"]:
                ec2.monitor_instances(InstanceIds=[live.id])
            else:
                ec2.unmonitor_instances(InstanceIds=[live.id])
        if "tags" in changed:
            update_ec2_tags(ctx, live.id, live.props["tags"], props["tags"])
            root_id = live.attrs.get("root_volume_id")
            if root_id:
                update_ec2_tags(ctx, root_id, read.root_user_tags(live.props["tags"]),
                                read.root_user_tags(props["tags"]))
        return self._read(ctx, live.id, live.address)

    def _set_profile(self, ctx: AwsContext, instance_id: str, name: str | None) -> None:
        ec2 = ctx.client("ec2")
        assocs = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance_id]},
                     {"Name": "state", "Values": ["associating", "associated"]}]
        )["IamInstanceProfileAssociations"]
        if name is None:
            for assoc in assocs:
                ec2.disassociate_iam_instance_profile(AssociationId=assoc["AssociationId"])
            return
        profile = {"Name": name}
        if assocs:
            call = lambda: ec2.replace_iam_instance_profile_association(  # noqa: E731
                IamInstanceProfile=profile, AssociationId=assocs[0]["AssociationId"])
        else:
            call = lambda: ec2.associate_iam_instance_profile(  # noqa: E731
                IamInstanceProfile=profile, InstanceId=instance_id)
        ctx.retry(call, codes={"InvalidParameterValue"}, match=_is_profile_propagation,
                  timeout=min(ctx.retry_timeout, 300.0))

    # -- delete ------------------------------------------------------------------------------
    def delete(self, ctx: AwsContext, live: Live) -> None:
        ec2 = ctx.client("ec2")
        found = read.get(ctx, live.id)
        if read.state_of(found) in {None, "terminated"}:
            return
        assert found is not None
        request = found[1].get("SpotInstanceRequestId")
        if request:  # else the persistent request would launch a replacement
            try:
                ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[request])
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
        try:
            ec2.terminate_instances(InstanceIds=[live.id])
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            return
        self._wait_state(ctx, live.id, live.address, {"terminated"})

    # -- reading and waiting -----------------------------------------------------------------
    def _lives(
        self, ctx: AwsContext, items: list[read.Described], known: list[dict[str, Any]] | None
    ) -> list[Live]:
        items = [it for it in items if is_owned(ctx, user_tags(it[1]))]
        if not items:
            return []
        vols = read.with_volumes(ctx, items, known)
        out = []
        for item in items:
            inst = item[1]
            address = address_of(user_tags(inst), self.kind, inst["InstanceId"])
            arn = (inst.get("IamInstanceProfile") or {}).get("Arn")
            profile = read.profile_name(arn) if arn else None
            props, attrs = read.props_and_attrs(ctx, item, address, profile, vols)
            out.append(Live(address, self.kind, inst["InstanceId"], props, attrs))
        return out

    def _read(self, ctx: AwsContext, instance_id: str, address: str) -> Live:
        found = read.get(ctx, instance_id)
        if found is None:
            raise CloudError("the instance vanished", address=address, aws_id=instance_id,
                             code="InvalidInstanceID.NotFound")
        return self._live_of(ctx, found, address)

    def _live_of(self, ctx: AwsContext, found: read.Described, address: str,
                 volumes: list[dict[str, Any]] | None = None) -> Live:
        """The Live of an instance just described (e.g. by the wait that saw it running); its root
        volume from ``volumes`` if there, else read."""
        lives = self._lives(ctx, [found], volumes)
        if not lives:
            raise CloudError("the instance lost its byoc tags", address=address,
                             aws_id=found[1]["InstanceId"], code="InvalidInstanceID.NotFound")
        return lives[0]

    def _poll(
        self,
        ctx: AwsContext,
        instance_id: str,
        address: str,
        what: str,
        done: Callable[[read.Described | None], bool],
    ) -> read.Described | None:
        try:
            result = ctx.poll(lambda: read.get(ctx, instance_id), done, what=f"{instance_id} {what}")
        except CloudError as exc:
            exc.address, exc.aws_id = address, instance_id
            raise
        return result

    def _wait_state(self, ctx: AwsContext, instance_id: str, address: str, states: set[str]) -> None:
        """Wait until the instance is in one of ``states``, terminated or gone, polling its state
        alone (DescribeInstanceStatus), not its whole description."""
        try:
            ctx.poll(lambda: read.state_now(ctx, instance_id),
                     lambda state: state is None or state in states | {"terminated"},
                     what=f"{instance_id} to be {'/'.join(sorted(states))}")
        except CloudError as exc:
            exc.address, exc.aws_id = address, instance_id
            raise

    def _wait_running(self, ctx: AwsContext, instance_id: str, address: str) -> read.Described:
        """Wait out ``pending`` (AWS: up to a minute or two); a launch that ends anywhere but
        ``running`` (no spot capacity, a KMS key the instance may not use …) is an error."""
        found = self._poll(ctx, instance_id, address, "to be running",
                           lambda i: i is not None and read.state_of(i) != "pending")
        assert found is not None
        state = read.state_of(found)
        if state != "running":
            reason = found[1].get("StateReason") or {}
            raise CloudError(
                f"the instance went {state} instead of running: {reason.get('Message') or 'no reason given'}",
                address=address, aws_id=instance_id, code=reason.get("Code") or "InstanceLaunchFailed",
            )
        return found


def _is_profile_propagation(exc: BaseException) -> bool:
    """``Value (x) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile
    name``: the profile is too new for EC2 to see it yet."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))
    squashed = message.lower().replace(" ", "")
    return error_code(exc) == "InvalidParameterValue" and "iaminstanceprofile" in squashed


KIND = Instance()
