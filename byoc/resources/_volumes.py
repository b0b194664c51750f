"""What the node kinds (instance, data volume, attachment) share: one DescribeVolumes per
discovery pass, the tags byoc keeps for itself, and how encryption settings are read back.

Root volumes carry ``byoc:cluster`` and ``byoc:root-of`` but no ``byoc:address``, so the data
volume kind never takes them for its own; all three kinds read them from the same describe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import is_not_found
from byoc.aws.tags import CLUSTER_TAG, account_id, owned_filter
from byoc.errors import CloudError
from byoc.resources._batch import Batcher, batcher
from byoc.resources._ec2 import ADDRESS_BATCH, address_filter, at_addresses, ec2_arn, user_tags

#: the root volume of the instance at this address (instead of ``byoc:address``)
ROOT_OF_TAG = "byoc:root-of"
#: sha256 hex of the instance's user data, recorded at launch (user data is never read back)
USER_DATA_TAG = "byoc:user-data-sha256"
#: "spot" or "on-demand", recorded at launch (moto gives spot instances no request id)
MARKET_TAG = "byoc:market"
#: the encryption asked for at create: "none", "default" (AWS managed key) or the key as given
ENCRYPTION_TAG = "byoc:encryption"
#: on a data volume: "false" when its attachment must not stop the instance before detaching
STOP_TAG = "byoc:stop-before-detach"
#: tags byoc adds for itself: never part of a reported ``tags`` prop
HIDDEN_TAGS = frozenset({ROOT_OF_TAG, USER_DATA_TAG, MARKET_TAG, ENCRYPTION_TAG, STOP_TAG})

#: volume states that mean "gone or going"
GONE_STATES = frozenset({"deleting", "deleted"})
#: attachment states that mean the volume is (becoming) attached
ATTACHED_STATES = frozenset({"attaching", "attached"})


def cluster_volumes(ctx: AwsContext) -> list[dict[str, Any]]:
    """Every live volume tagged for this cluster (data and root volumes): one paginated,
    tag-filtered DescribeVolumes, shared by the three node kinds within a discovery pass."""
    return ctx.memo("ec2", "describe_volumes_cluster", lambda: _fetch_volumes(ctx, owned_filter(ctx)))


def _fetch_volumes(ctx: AwsContext, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pages = ctx.client("ec2").get_paginator("describe_volumes").paginate(Filters=filters)
    return [
        v
        for page in pages
        for v in page["Volumes"]
        if v.get("State") not in GONE_STATES and user_tags(v).get(CLUSTER_TAG) == ctx.cluster
    ]


#: ids per DescribeVolumes of the batched reads (EC2 takes at most 200 values per filter)
BATCH = 200


def volumes_at(ctx: AwsContext, address: str) -> list[dict[str, Any]]:
    """A fresh look (no memo) for the cluster's live volumes tagged with ``address``, read in one
    call with the other addresses looked at in that moment (an address filter: no other node's)."""
    def read(addresses: list[str]) -> dict[str, list[dict[str, Any]]]:
        return at_addresses(_fetch_volumes(ctx, address_filter(ctx, addresses)), addresses, user_tags)

    return batcher(ctx, "ec2:volumes-at", lambda: Batcher(read, size=ADDRESS_BATCH)).get(address) or []


def _volumes_named(ctx: AwsContext, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Volumes by id, in any state, in one call: a ``volume-id`` filter answers the ids AWS knows
    and skips the rest (one not visible yet just after CreateVolume fails nothing), where
    ``VolumeIds`` would refuse the whole call."""
    pages = ctx.client("ec2").get_paginator("describe_volumes").paginate(
        Filters=[{"Name": "volume-id", "Values": ids}]
    )
    return {v["VolumeId"]: v for page in pages for v in page["Volumes"]}


def _reader(ctx: AwsContext) -> Batcher[str, dict[str, Any]]:
    """The context's batched volume reader: every volume waited on at one moment, one call."""
    return batcher(ctx, "ec2:volumes", lambda: Batcher(lambda ids: _volumes_named(ctx, ids), size=BATCH))


def volumes_by_id(ctx: AwsContext, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The live volumes among ``ids`` (unknown ids are skipped, not errors), read together with
    whatever other volumes are being read at the same moment."""
    found = _reader(ctx).get_many(sorted(set(ids)))
    return {k: v for k, v in found.items() if v.get("State") not in GONE_STATES}


def describe_volume(ctx: AwsContext, volume_id: str, *, deleting: bool = False) -> dict[str, Any] | None:
    """The volume as AWS describes it now; None when it does not exist (any more, or yet) or,
    unless ``deleting``, is being deleted. Batched with the other volumes read at that moment."""
    try:
        vol = _reader(ctx).get(volume_id)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise
    if vol is None or vol.get("State") == "deleted" or (vol.get("State") in GONE_STATES and not deleting):
        return None
    return vol


def attachment_to(
    volume: Mapping[str, Any] | None, instance_id: str | None = None, states: Iterable[str] = ATTACHED_STATES
) -> dict[str, Any] | None:
    """The volume's attachment (to ``instance_id`` if given) in one of ``states``."""
    wanted = frozenset(states)
    for att in (volume or {}).get("Attachments") or ():
        if att.get("State") in wanted and (instance_id is None or att.get("InstanceId") == instance_id):
            return dict(att)
    return None


def visible_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The ``tags`` prop: the resource's tags without the ones byoc keeps for itself."""
    return {k: v for k, v in tags.items() if k not in HIDDEN_TAGS}


def encryption_tag(encrypted: bool, kms_key_id: str | None) -> str:
    """What to record in ``byoc:encryption`` for a create with these settings."""
    if not encrypted:
        return "none"
    return kms_key_id or "default"


def encryption_props(volume: Mapping[str, Any]) -> tuple[bool, str | None]:
    """``(encrypted, kms_key_id)`` in the blueprint's terms.

    AWS reports the key's ARN even when the volume was made with the AWS managed key (the
    blueprint's None) or with an alias ARN, and encrypts a volume asked to be unencrypted when
    the account encrypts EBS by default. A volume's encryption can never change, so what was
    asked at create (the ``byoc:encryption`` tag) is reported; volumes without the tag report
    what AWS says.
    """
    encrypted = bool(volume.get("Encrypted"))
    key = volume.get("KmsKeyId") or None
    asked = user_tags(volume).get(ENCRYPTION_TAG)
    if asked is None:
        return encrypted, key
    if asked == "none":
        return False, None
    if not encrypted:  # the tag lies (edited by hand): AWS wins
        return False, None
    return True, None if asked == "default" else asked


def volume_arn(ctx: AwsContext, volume_id: str) -> str:
    return ec2_arn(ctx, account_id(ctx), f"volume/{volume_id}")


def poll_volume(
    ctx: AwsContext,
    volume_id: str,
    done: Callable[[dict[str, Any] | None], bool],
    *,
    what: str,
    address: str,
    aws_id: str | None = None,
    timeout: float = 900.0,
    deleting: bool = False,
) -> dict[str, Any] | None:
    """Poll DescribeVolumes for ``volume_id`` until ``done``; a timeout names the address."""
    try:
        return ctx.poll(
            lambda: describe_volume(ctx, volume_id, deleting=deleting), done, timeout=timeout, what=what
        )
    except CloudError as exc:
        exc.address, exc.aws_id = address, aws_id or volume_id
        raise
