"""``aws_s3_bucket``: the cluster's buckets (data, and the log bucket beside it) with their versioning,
encryption, public access block, ownership, policy, lifecycle, server access logging, event
notifications, replication and tags in one kind. It holds data: deleting one empties it first.

Which existing bucket is this cluster's is one rule (``foreign``), shared by discovery
(``find_untagged`` finds an untagged one by name), create (adopting it) and preflight (not
refusing its name).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG, address_of, tag_list
from byoc.errors import CloudError
from byoc.model import UNKNOWN, Companion, Live, canonical_json, partition
from byoc.resources._replication import replication_from_props, replication_to_aws
from byoc.resources._s3 import (
    PAB_KEYS,
    empty_bucket,
    encryption_to_aws,
    lifecycle_rules,
    lifecycle_to_aws,
    logging_from_props,
    logging_to_aws,
    normalise_policy,
    notification_from_props,
    notification_to_aws,
    pab_from_aws,
    pab_to_aws,
    policy_to_aws,
    read_settings,
)
from byoc.resources._shapes import json_text
from byoc.resources._tagging import tagged
from byoc.resources.base import ResourceType

#: every prop but bucket and tags, in the order create and update write them
SETTINGS = (
    "public_access_block",
    "sse_algorithm",
    "kms_master_key_id",
    "bucket_key_enabled",
    "versioning",
    "object_ownership",
    "lifecycle_rules",
    "policy",
    "logging",
    "notification",
    "replication_configuration",
)
ENCRYPTION = frozenset({"sse_algorithm", "kms_master_key_id", "bucket_key_enabled"})
#: S3's answers while a just-created bucket propagates or another change to it is in flight
TRANSIENT = frozenset({"NoSuchBucket", "OperationAborted"})
#: the blueprint's addresses of the cluster's bucket and of its log bucket
BUCKET_ADDRESS = "aws_s3_bucket.data"
LOGS_ADDRESS = "aws_s3_bucket.logs"
#: S3's answers while a log bucket's new policy is not yet in force for PutBucketLogging
TARGET_NOT_READY = frozenset({"InvalidTargetBucketForLogging"})


def name_field(address: str) -> str:
    """The spec field that names the bucket at ``address``."""
    return "storage.access_logs.bucket_name" if address == LOGS_ADDRESS else "storage.bucket_name"


def taken(address: str) -> str:
    return f"the bucket name is taken by another AWS account; choose another {name_field(address)}"


def foreign(tags: Mapping[str, str], cluster: str, address: str = BUCKET_ADDRESS) -> str | None:
    """Why an existing bucket of this account is NOT ``cluster``'s bucket at ``address`` (a phrase
    after "the bucket"), or None when it is: it carries the cluster's tags for ``address``, or no
    tags at all (a run stopped between CreateBucket and PutBucketTagging; the next run adopts it).
    Discovery (``find_untagged``), create and preflight share this rule."""
    tags = {k: v for k, v in tags.items() if not k.startswith("aws:")}
    if not tags or (tags.get(CLUSTER_TAG) == cluster and tags.get(ADDRESS_TAG) == address):
        return None
    if tags.get(CLUSTER_TAG) == cluster:
        return f"is tagged for this cluster as {tags.get(ADDRESS_TAG) or 'no byoc:address'}, not as {address}"
    if CLUSTER_TAG in tags:
        return f"belongs to byoc cluster {tags[CLUSTER_TAG]}"
    return f"is not this cluster's (tags {json.dumps(tags, sort_keys=True)})"


def bucket_tags(ctx: AwsContext, name: str) -> dict[str, str] | None:
    """The tags of bucket ``name`` in this account ({} when it has none); None when it does not
    exist (or is another account's)."""
    try:
        tag_set = ctx.client("s3").get_bucket_tagging(Bucket=name)["TagSet"]
    except ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchTagSet":
            return {}
        if code in {"NoSuchBucket", "404", "NotFound", "403", "AccessDenied", "Forbidden"}:
            return None
        raise
    return {t["Key"]: t["Value"] for t in tag_set}


class S3Bucket(ResourceType):
    kind = "aws_s3_bucket"
    service = "s3"
    seconds = (3.0, 3.0)
    force_new = frozenset({"bucket"})
    holds_data = True
    #: what a kept bucket gives up when destroy deletes the rest of the cluster: its replication
    #: configuration names the replication role that destroy deletes
    kept_resets: tuple[tuple[str, Any], ...] = (("replication_configuration", []),)

    def __init__(self, page_size: int = 1000, batch: int = 1000) -> None:
        #: ListObjectVersions page size and DeleteObjects batch size when emptying
        self.page_size = page_size
        self.batch = batch

    # -- reading -------------------------------------------------------------------------------
    def discover(self, ctx: AwsContext) -> list[Live]:
        # one GetResources per pass (shared by every kind); bucket ARNs are arn:aws:s3:::name
        found = [t for t in tagged(ctx, "s3") if "/" not in t.resource]
        settings = read_settings(ctx, [t.resource for t in found])
        out = []
        for t in found:
            current = settings.get(t.resource)
            if current is None:  # listed by the index, deleted meanwhile
                continue
            tags = {k: v for k, v in t.tags.items() if not k.startswith("aws:")}
            address = address_of(t.tags, self.kind, t.resource)
            out.append(self._live(ctx, address, {"bucket": t.resource, **current, "tags": tags}))
        return sorted(out, key=lambda live: live.address)

    def find_untagged(self, ctx: AwsContext, names: Mapping[str, str]) -> list[Live]:
        """The buckets of ``names`` (address → bucket name) that exist in this account without any
        tags: the tagging index cannot see them, but by ``foreign``'s rule they are this cluster's
        (a run killed before tagging its new bucket; tags removed by hand from a bucket the state
        records). Tagged buckets are the index's to find."""
        out = []
        for address, name in sorted(names.items()):
            tags = bucket_tags(ctx, name)
            if tags is None or {k for k in tags if not k.startswith("aws:")}:
                continue
            current = read_settings(ctx, [name]).get(name)
            if current is not None:
                out.append(self._live(ctx, address, {"bucket": name, **current, "tags": {}}))
        return out

    def _live(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        name = str(props["bucket"])
        suffix = ".amazonaws.com.cn" if ctx.region.startswith("cn-") else ".amazonaws.com"
        attrs = {
            "arn": f"arn:{partition(ctx.region)}:s3:::{name}",
            "bucket_regional_domain_name": f"{name}.s3.{ctx.region}{suffix}",
            "region": ctx.region,
        }
        return Live(address, self.kind, name, _props(props), attrs)

    # -- writing -------------------------------------------------------------------------------
    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        s3 = ctx.client("s3")
        name = props["bucket"]
        current = self._make(ctx, address, props)
        # discovery finds buckets by tag: tag before anything else (a new bucket may answer
        # NoSuchBucket for a moment)
        _call(ctx, s3.put_bucket_tagging, Bucket=name, Tagging={"TagSet": tag_list(props["tags"])})
        self._apply(ctx, name, current, props)
        ctx.wait(s3, "bucket_exists", Bucket=name, timeout=300.0)
        return self._live(ctx, address, props)

    def _make(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
        """CreateBucket; what the bucket holds now (for ``_apply`` to converge from)."""
        s3 = ctx.client("s3")
        name = props["bucket"]
        params: dict[str, Any] = {"Bucket": name, "ObjectOwnership": props["object_ownership"]}
        if ctx.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        elif _exists(ctx, name, address):
            # us-east-1 answers CreateBucket of a bucket you own with 200, not BucketAlreadyOwnedByYou
            return self._adopt(ctx, address, name)
        try:
            ctx.retry(lambda: s3.create_bucket(**params), codes={"OperationAborted"})
        except ClientError as exc:
            code = error_code(exc)
            if code == "BucketAlreadyExists":
                raise CloudError(taken(address), address=address, aws_id=name, code=code) from exc
            if code != "BucketAlreadyOwnedByYou":
                raise
            return self._adopt(ctx, address, name)
        # a new bucket: what CreateBucket set; the rest is written whatever S3's defaults are
        return {"versioning": False, "object_ownership": props["object_ownership"], "policy": None,
                "lifecycle_rules": [], "logging": [], "notification": notification_from_props(None),
                "replication_configuration": []}

    def _adopt(self, ctx: AwsContext, address: str, name: str) -> Mapping[str, Any]:
        """The bucket exists in this account: carry on if ``foreign`` says it is ours (tagged for
        ``address``, or without tags: an earlier run stopped between CreateBucket and tagging)."""
        tags = bucket_tags(ctx, name) or {}
        why = foreign(tags, ctx.cluster, address)
        if why is not None:
            raise CloudError(
                f"bucket {name} already exists in this AWS account and {why}; "
                f"choose another {name_field(address)}",
                address=address,
                aws_id=name,
                code="BucketAlreadyOwnedByYou",
            )
        current = read_settings(ctx, [name]).get(name)
        return current or {}

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        s3 = ctx.client("s3")
        if "tags" in changed:
            _call(ctx, s3.put_bucket_tagging, Bucket=live.id, Tagging={"TagSet": tag_list(props["tags"])})
        self._apply(ctx, live.id, live.props, props, changed)
        return self._live(ctx, live.address, {**props, "bucket": live.id})

    def _apply(
        self,
        ctx: AwsContext,
        name: str,
        current: Mapping[str, Any],
        props: Mapping[str, Any],
        changed: set[str] | None = None,
    ) -> None:
        """Write the settings that differ from ``current`` (or those in ``changed``), in order:
        public access block, encryption, versioning, ownership, lifecycle, policy, event notifications,
        logging (its target, the log bucket, must let S3's log delivery write first), replication (S3
        accepts it only on a versioned bucket)."""
        s3 = ctx.client("s3")
        want = _props({**props, "bucket": name})
        if changed is None:
            changed = {k for k in SETTINGS if canonical_json(current.get(k)) != canonical_json(want[k])}
        if "public_access_block" in changed:
            _call(ctx, s3.put_public_access_block, Bucket=name,
                  PublicAccessBlockConfiguration=pab_to_aws(want["public_access_block"]))
        if changed & ENCRYPTION:
            _call(ctx, s3.put_bucket_encryption, Bucket=name,
                  ServerSideEncryptionConfiguration=encryption_to_aws(want))
        # S3 cannot go back to unversioned: off on a versioned bucket means Suspended
        if "versioning" in changed and (want["versioning"] or current.get("versioning")):
            status = "Enabled" if want["versioning"] else "Suspended"
            _call(ctx, s3.put_bucket_versioning, Bucket=name, VersioningConfiguration={"Status": status})
        if "object_ownership" in changed:
            _call(ctx, s3.put_bucket_ownership_controls, Bucket=name,
                  OwnershipControls={"Rules": [{"ObjectOwnership": want["object_ownership"]}]})
        if "lifecycle_rules" in changed:
            if want["lifecycle_rules"]:
                _call(ctx, s3.put_bucket_lifecycle_configuration, Bucket=name,
                      LifecycleConfiguration={"Rules": lifecycle_to_aws(want["lifecycle_rules"])})
            else:
                _call(ctx, s3.delete_bucket_lifecycle, Bucket=name)
        if "policy" in changed:
            if want["policy"] is None:
                _call(ctx, s3.delete_bucket_policy, Bucket=name)
            else:
                policy = json.dumps(policy_to_aws(want["policy"]))
                # a principal (an IAM role made a moment ago) may not be visible to S3 yet
                ctx.retry(
                    lambda: _call(ctx, s3.put_bucket_policy, Bucket=name, Policy=policy),
                    codes={"MalformedPolicy"},
                    match=lambda exc: "principal" in str(exc).lower(),
                    timeout=min(ctx.retry_timeout, 120.0),
                )
        if "notification" in changed:
            # the whole configuration: a target set by hand (a drift byoc shows) goes with it
            _call(ctx, s3.put_bucket_notification_configuration, Bucket=name,
                  NotificationConfiguration=notification_to_aws(want["notification"]))
        if "logging" in changed:
            logging_status = logging_to_aws(want["logging"])
            # the log bucket's policy (just written by its own create) may take a moment to count
            ctx.retry(
                lambda: _call(ctx, s3.put_bucket_logging, Bucket=name, BucketLoggingStatus=logging_status),
                codes=TARGET_NOT_READY,
                timeout=min(ctx.retry_timeout, 60.0),
            )
        if "replication_configuration" in changed:
            replication = replication_to_aws(want["replication_configuration"])
            if replication is None:
                _call(ctx, s3.delete_bucket_replication, Bucket=name)
            else:
                _call(ctx, s3.put_bucket_replication, Bucket=name, ReplicationConfiguration=replication)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        s3 = ctx.client("s3")
        name = live.id

        def empty_and_delete() -> None:
            # the policy goes first: a Deny in it (moto: any aws:SecureTransport condition)
            # must not block emptying a bucket that is about to go
            s3.delete_bucket_policy(Bucket=name)
            empty_bucket(ctx, name, page_size=self.page_size, batch=self.batch)
            s3.delete_bucket(Bucket=name)

        try:
            # BucketNotEmpty: something wrote while we emptied (a node still shipping data)
            ctx.retry(empty_and_delete, codes={"BucketNotEmpty", "OperationAborted"})
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket":
                raise
            return
        ctx.wait(s3, "bucket_not_exists", Bucket=name, timeout=300.0)

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The provider's inline blocks: ``versioning``, ``server_side_encryption_configuration``,
        ``lifecycle_rule``, ``policy`` as JSON text; the public access block, the ownership
        controls and the notification configuration are the provider's separate resources
        (``provider_companions``)."""
        out: dict[str, Any] = {}
        for k, v in values.items():
            if k in ENCRYPTION or k in COMPANION_PROPS:
                continue
            if k == "versioning":
                out[k] = UNKNOWN if v is UNKNOWN else [{"enabled": bool(v), "mfa_delete": False}]
            elif k == "lifecycle_rules":
                out["lifecycle_rule"] = v if not isinstance(v, list) else [_provider_rule(r) for r in v]
            elif k == "policy":
                out[k] = json_text(v)
            else:
                out[k] = v
        if "sse_algorithm" in values:
            out["server_side_encryption_configuration"] = [{"rule": [{
                "apply_server_side_encryption_by_default": [{
                    "sse_algorithm": values["sse_algorithm"],
                    "kms_master_key_id": values.get("kms_master_key_id") or "",
                }],
                "bucket_key_enabled": bool(values.get("bucket_key_enabled")),
            }]}]
        return out

    def provider_companions(self, values: Mapping[str, Any], aws_id: str | None) -> list[Companion]:
        """``aws_s3_bucket_public_access_block``, ``aws_s3_bucket_ownership_controls`` and
        ``aws_s3_bucket_notification``, each with ``bucket`` referencing the bucket (what checkov's
        connection checks, CKV2_AWS_6 and CKV2_AWS_62, look for). A bucket that sends no events has
        no notification resource, as in a Terraform configuration without one: a policy that wants
        notifications fails it."""
        bucket = values.get("bucket", aws_id if aws_id is not None else UNKNOWN)
        out = []
        if "public_access_block" in values:
            pab = values["public_access_block"]
            flags = {k: UNKNOWN for k in PAB_KEYS} if pab is UNKNOWN else {k: bool(pab[k]) for k in PAB_KEYS}
            out.append(Companion("aws_s3_bucket_public_access_block", {"bucket": bucket, **flags},
                                 {"bucket": "id"}))
        if "object_ownership" in values:
            rule = values["object_ownership"]
            out.append(Companion("aws_s3_bucket_ownership_controls", {
                "bucket": bucket, "rule": UNKNOWN if rule is UNKNOWN else [{"object_ownership": rule}],
            }, {"bucket": "id"}))
        if "notification" in values:
            conf = values["notification"]
            shaped = (dict.fromkeys(("eventbridge", "lambda_function", "queue", "topic"), UNKNOWN)
                      if conf is UNKNOWN else notification_from_props(conf))
            if any(v is UNKNOWN or v for v in shaped.values()):
                out.append(Companion("aws_s3_bucket_notification", {"bucket": bucket, **shaped},
                                     {"bucket": "id"}))
        return out


#: props the provider keeps in resources of their own (shown as companions)
COMPANION_PROPS = frozenset({"public_access_block", "object_ownership", "notification"})


def _provider_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One byoc lifecycle rule as the provider's ``lifecycle_rule`` block (always enabled)."""
    def days(name: str) -> list[dict[str, Any]]:
        return [] if rule.get(name) is None else [{"days": rule[name]}]

    return {
        "id": rule.get("id"), "prefix": rule.get("prefix", ""), "enabled": True, "tags": {},
        "abort_incomplete_multipart_upload_days": rule.get("abort_incomplete_multipart_upload_days"),
        "expiration": [{**d, "date": "", "expired_object_delete_marker": False}
                       for d in days("expiration_days")],
        "noncurrent_version_expiration": days("noncurrent_version_expiration_days"),
        "noncurrent_version_transition": [],
        "transition": [{"days": t["days"], "date": "", "storage_class": t["storage_class"]}
                       for t in rule.get("transitions") or ()],
    }


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly."""
    return {
        "bucket": str(props["bucket"]),
        "versioning": bool(props["versioning"]),
        "sse_algorithm": str(props["sse_algorithm"]),
        "kms_master_key_id": props.get("kms_master_key_id") or None,
        "bucket_key_enabled": bool(props["bucket_key_enabled"]),
        "public_access_block": pab_from_aws(pab_to_aws(props["public_access_block"])),
        "object_ownership": str(props["object_ownership"]),
        "policy": normalise_policy(props.get("policy")),
        "lifecycle_rules": lifecycle_rules(props.get("lifecycle_rules")),
        "logging": logging_from_props(props.get("logging")),
        "notification": notification_from_props(props.get("notification")),
        "replication_configuration": replication_from_props(props.get("replication_configuration")),
        "tags": dict(props["tags"]),
    }


def _call(ctx: AwsContext, fn: Callable[..., Any], **params: Any) -> Any:
    """One S3 write, retried while the bucket is still propagating or busy with another change."""
    return ctx.retry(lambda: fn(**params), codes=TRANSIENT, timeout=min(ctx.retry_timeout, 120.0))


def _exists(ctx: AwsContext, name: str, address: str) -> bool:
    """HeadBucket: True if this account owns it; CloudError if another account does."""
    try:
        ctx.client("s3").head_bucket(Bucket=name)
    except ClientError as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return False
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise CloudError(taken(address), address=address, aws_id=name,
                             code="BucketAlreadyExists") from exc
        raise
    return True


KIND = S3Bucket()
