"""Pure S3 helpers for ``aws_s3_bucket``: the policy normal form, lifecycle, encryption, logging,
event notification and replication shapes, the nine concurrent per-bucket reads of discovery, and
emptying a bucket of every object version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.errors import CloudError
from byoc.resources._replication import NOT_FOUND, replication_from_aws

#: statement keys whose value is a string or a list of strings
_LIST_KEYS = frozenset({"Action", "NotAction", "Resource", "NotResource"})
_PRINCIPAL_KEYS = frozenset({"Principal", "NotPrincipal"})


# -- bucket policy ---------------------------------------------------------------------------
def normalise_policy(doc: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """The policy normal form shared by blueprint and discovery (None stays None).

    Action/Resource (and Not*) become sorted lists, a principal is ``"*"`` or ``{type: sorted
    list}``, a condition is ``{op: {key: sorted list of strings}}``; statements keep their order.
    """
    if doc is None:
        return None
    if isinstance(doc, str):
        doc = json.loads(doc)
        assert isinstance(doc, Mapping)
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "Statement":
            statements = value if isinstance(value, list | tuple) else [value]
            out[key] = [_statement(s) for s in statements]
        else:
            out[key] = value
    return out


def _statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _LIST_KEYS:
            out[key] = _strings(value)
        elif key in _PRINCIPAL_KEYS:
            out[key] = "*" if value == "*" else {kind: _strings(ids) for kind, ids in value.items()}
        elif key == "Condition":
            out[key] = {op: {k: _strings(v) for k, v in body.items()} for op, body in value.items()}
        else:
            out[key] = value
    return out


def policy_to_aws(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The policy as PutBucketPolicy gets it: a one-element list (action, resource, principal,
    condition value) written as its single string, the form AWS's own examples use (and S3's log
    delivery check in moto accepts); ``normalise_policy`` reads either form back the same."""

    def one(value: Any) -> Any:
        return value[0] if isinstance(value, list | tuple) and len(value) == 1 else value

    out: dict[str, Any] = dict(doc)
    statements = []
    for st in doc.get("Statement") or ():
        s = dict(st)
        for key in _LIST_KEYS & set(s):
            s[key] = one(s[key])
        for key in _PRINCIPAL_KEYS & set(s):
            if isinstance(s[key], Mapping):
                s[key] = {kind: one(ids) for kind, ids in s[key].items()}
        if "Condition" in s:
            s["Condition"] = {op: {k: one(v) for k, v in body.items()} for op, body in s["Condition"].items()}
        statements.append(s)
    out["Statement"] = statements
    return out


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return sorted(_text(v) for v in items)  # no de-duplication: the blueprint's form keeps them


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- lifecycle -------------------------------------------------------------------------------
def lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A lifecycle rule in the blueprint's shape (every key present, transitions by days)."""
    transitions = [{"days": int(t["days"]), "storage_class": str(t["storage_class"])}
                   for t in rule.get("transitions") or ()]
    return {
        "id": str(rule["id"]),
        "prefix": str(rule.get("prefix") or ""),
        "expiration_days": _int_or_none(rule.get("expiration_days")),
        "noncurrent_version_expiration_days": _int_or_none(rule.get("noncurrent_version_expiration_days")),
        "transitions": sorted(transitions, key=lambda t: (t["days"], t["storage_class"])),
        "abort_incomplete_multipart_upload_days": _int_or_none(
            rule.get("abort_incomplete_multipart_upload_days")
        ),
    }


def lifecycle_rules(rules: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    return sorted((lifecycle_rule(r) for r in rules or ()), key=lambda r: str(r["id"]))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def lifecycle_to_aws(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PutBucketLifecycleConfiguration rules: always Enabled, filtered by Filter.Prefix."""
    out = []
    for rule in lifecycle_rules(rules):
        item: dict[str, Any] = {"ID": rule["id"], "Status": "Enabled", "Filter": {"Prefix": rule["prefix"]}}
        if rule["expiration_days"] is not None:
            item["Expiration"] = {"Days": rule["expiration_days"]}
        if rule["noncurrent_version_expiration_days"] is not None:
            days = rule["noncurrent_version_expiration_days"]
            item["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
        if rule["transitions"]:
            item["Transitions"] = [{"Days": t["days"], "StorageClass": t["storage_class"]}
                                   for t in rule["transitions"]]
        if rule["abort_incomplete_multipart_upload_days"] is not None:
            item["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": rule["abort_incomplete_multipart_upload_days"]
            }
        out.append(item)
    return out


def lifecycle_from_aws(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """GetBucketLifecycleConfiguration rules in the blueprint's shape; a disabled rule counts as
    absent (byoc writes every rule Enabled, so a disabled one shows as a difference)."""
    out = []
    for r in rules:
        if r.get("Status") != "Enabled":
            continue
        flt = r.get("Filter") or {}
        prefix = flt.get("Prefix", (flt.get("And") or {}).get("Prefix", r.get("Prefix", "")))
        out.append({
            "id": r.get("ID", ""),
            "prefix": prefix,
            "expiration_days": (r.get("Expiration") or {}).get("Days"),
            "noncurrent_version_expiration_days": (r.get("NoncurrentVersionExpiration") or {}).get(
                "NoncurrentDays"
            ),
            "transitions": [{"days": t["Days"], "storage_class": t["StorageClass"]}
                            for t in r.get("Transitions") or () if "Days" in t],
            "abort_incomplete_multipart_upload_days": (r.get("AbortIncompleteMultipartUpload") or {}).get(
                "DaysAfterInitiation"
            ),
        })
    return lifecycle_rules(out)


# -- server access logging ------------------------------------------------------------------
def logging_from_props(value: Iterable[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """The ``logging`` prop (the provider's block: a list of at most one target) in one shape."""
    return [{"target_bucket": str(v["target_bucket"]), "target_prefix": str(v.get("target_prefix") or "")}
            for v in value or ()]


def logging_to_aws(value: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """PutBucketLogging's BucketLoggingStatus: an empty one turns logging off."""
    targets = logging_from_props(value)
    if not targets:
        return {}
    return {"LoggingEnabled": {"TargetBucket": targets[0]["target_bucket"],
                               "TargetPrefix": targets[0]["target_prefix"]}}


def logging_from_aws(response: Mapping[str, Any] | None) -> list[dict[str, str]]:
    enabled = (response or {}).get("LoggingEnabled")
    if not enabled:
        return []
    return logging_from_props([{"target_bucket": enabled["TargetBucket"],
                                "target_prefix": enabled.get("TargetPrefix")}])


# -- event notifications --------------------------------------------------------------------
#: the provider's notification target blocks: (block, its ARN attribute, S3's configuration list and ARN key)
NOTIFICATION_TARGETS = (
    ("lambda_function", "lambda_function_arn", "LambdaFunctionConfigurations", "LambdaFunctionArn"),
    ("queue", "queue_arn", "QueueConfigurations", "QueueArn"),
    ("topic", "topic_arn", "TopicConfigurations", "TopicArn"),
)


def notification_from_props(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``notification`` prop in one shape: the provider's ``aws_s3_bucket_notification`` values
    without ``bucket`` (``eventbridge`` and each target block, targets sorted by id). byoc manages
    the whole configuration (PutBucketNotificationConfiguration replaces it): the blueprint wants no
    targets, so a target added by hand shows as a difference. None (a state from before this prop)
    reads as no configuration."""
    value = value or {}
    out: dict[str, Any] = {"eventbridge": bool(value.get("eventbridge"))}
    for block, arn, _, _ in NOTIFICATION_TARGETS:
        out[block] = sorted(({
            "id": str(t.get("id") or ""),
            arn: str(t.get(arn) or ""),
            "events": sorted(str(e) for e in t.get("events") or ()),
            "filter_prefix": str(t.get("filter_prefix") or ""),
            "filter_suffix": str(t.get("filter_suffix") or ""),
        } for t in value.get(block) or ()), key=lambda t: (t["id"], t[arn]))
    return out


def notification_to_aws(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """PutBucketNotificationConfiguration's NotificationConfiguration (the whole of it: an empty one
    turns every notification off)."""
    conf = notification_from_props(value)
    out: dict[str, Any] = {"EventBridgeConfiguration": {}} if conf["eventbridge"] else {}
    for block, arn, aws_list, aws_arn in NOTIFICATION_TARGETS:
        items = []
        for t in conf[block]:
            item: dict[str, Any] = {aws_arn: t[arn], "Events": t["events"]}
            if t["id"]:
                item["Id"] = t["id"]
            rules = [{"Name": name, "Value": t[f"filter_{name}"]} for name in ("prefix", "suffix")
                     if t[f"filter_{name}"]]
            if rules:
                item["Filter"] = {"Key": {"FilterRules": rules}}
            items.append(item)
        if items:
            out[aws_list] = items
    return out


def notification_from_aws(response: Mapping[str, Any] | None) -> dict[str, Any]:
    """GetBucketNotificationConfiguration's answer as the ``notification`` prop."""
    response = response or {}
    out: dict[str, Any] = {"eventbridge": "EventBridgeConfiguration" in response}
    for block, arn, aws_list, aws_arn in NOTIFICATION_TARGETS:
        targets = []
        for item in response.get(aws_list) or ():
            rules = {str(r.get("Name", "")).lower(): r.get("Value", "")
                     for r in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules") or ()}
            targets.append({"id": item.get("Id"), arn: item.get(aws_arn), "events": item.get("Events"),
                            "filter_prefix": rules.get("prefix"), "filter_suffix": rules.get("suffix")})
        out[block] = targets
    return notification_from_props(out)


# -- encryption and public access block ------------------------------------------------------
PAB_KEYS = {
    "block_public_acls": "BlockPublicAcls",
    "block_public_policy": "BlockPublicPolicy",
    "ignore_public_acls": "IgnorePublicAcls",
    "restrict_public_buckets": "RestrictPublicBuckets",
}


def pab_to_aws(pab: Mapping[str, Any]) -> dict[str, bool]:
    return {aws: bool(pab[prop]) for prop, aws in PAB_KEYS.items()}


def pab_from_aws(config: Mapping[str, Any] | None) -> dict[str, bool]:
    return {prop: bool((config or {}).get(aws, False)) for prop, aws in PAB_KEYS.items()}


def encryption_to_aws(props: Mapping[str, Any]) -> dict[str, Any]:
    default: dict[str, Any] = {"SSEAlgorithm": props["sse_algorithm"]}
    if props.get("kms_master_key_id"):
        default["KMSMasterKeyID"] = props["kms_master_key_id"]
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default,
                       "BucketKeyEnabled": bool(props["bucket_key_enabled"])}]}


def encryption_from_aws(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The three encryption props; no configuration reads as SSE-S3 (what S3 applies anyway)."""
    rules = (config or {}).get("Rules") or [{}]
    default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
    return {
        "sse_algorithm": default.get("SSEAlgorithm", "AES256"),
        "kms_master_key_id": default.get("KMSMasterKeyID") or None,
        "bucket_key_enabled": bool(rules[0].get("BucketKeyEnabled", False)),
    }


# -- discovery reads -------------------------------------------------------------------------
def _reads(s3: Any) -> list[tuple[Callable[..., Any], str | None, Callable[[Any], dict[str, Any]]]]:
    """(read, the error code that means "not set", the props its answer — or None — yields)."""
    return [
        (s3.get_bucket_versioning, None, lambda r: {"versioning": r.get("Status") == "Enabled"}),
        (s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError",
         lambda r: encryption_from_aws(r and r.get("ServerSideEncryptionConfiguration"))),
        (s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration",
         lambda r: {"public_access_block": pab_from_aws(r and r.get("PublicAccessBlockConfiguration"))}),
        # no ownership controls behaves as ObjectWriter (ACLs enabled), S3's old default
        (s3.get_bucket_ownership_controls, "OwnershipControlsNotFoundError",
         lambda r: {"object_ownership": r["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
                    if r else "ObjectWriter"}),
        (s3.get_bucket_policy, "NoSuchBucketPolicy",
         lambda r: {"policy": normalise_policy(r["Policy"]) if r else None}),
        (s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration",
         lambda r: {"lifecycle_rules": lifecycle_from_aws(r.get("Rules") or ()) if r else []}),
        # no logging answers an empty status, not an error
        (s3.get_bucket_logging, None, lambda r: {"logging": logging_from_aws(r)}),
        # no notification configuration answers an empty one too
        (s3.get_bucket_notification_configuration, None,
         lambda r: {"notification": notification_from_aws(r)}),
        (s3.get_bucket_replication, NOT_FOUND, lambda r: {
            "replication_configuration": replication_from_aws(r and r.get("ReplicationConfiguration"))}),
    ]


def read_settings(ctx: AwsContext, buckets: list[str]) -> dict[str, dict[str, Any] | None]:
    """Every bucket's settings as props (eight reads each, run concurrently); None for a bucket
    that no longer exists (the tagging index lags behind deletions)."""
    reads = _reads(ctx.client("s3"))

    def one(job: tuple[str, int]) -> dict[str, Any] | None:
        bucket, i = job
        call, unset, shape = reads[i]
        try:
            response = call(Bucket=bucket)
        except ClientError as exc:
            code = error_code(exc)
            if code == "NoSuchBucket":
                return None
            if code != unset:
                raise
            response = None
        return shape(response)

    jobs = [(b, i) for b in buckets for i in range(len(reads))]
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(jobs), 8)) as pool:
        results = list(pool.map(one, jobs))
    out: dict[str, dict[str, Any] | None] = {}
    for (bucket, _), part in zip(jobs, results, strict=True):
        current = out.setdefault(bucket, {})
        if part is None or current is None:
            out[bucket] = None
        else:
            current.update(part)
    return out


# -- emptying --------------------------------------------------------------------------------
def empty_bucket(ctx: AwsContext, bucket: str, *, page_size: int = 1000, batch: int = 1000) -> int:
    """Delete every object version and delete marker; returns how many were deleted.

    Each round lists from the start (ListObjectVersions pages of ``page_size``) until ``batch``
    keys are in hand, then deletes them with DeleteObjects; listing restarts rather than
    continuing from a marker past deleted keys (moto then skips the rest)."""
    s3 = ctx.client("s3")
    deleted = 0
    while True:
        keys: list[dict[str, str]] = []
        exhausted = True
        pages = s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": page_size}
        )
        for page in pages:
            for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]:
                keys.append({"Key": item["Key"], "VersionId": item["VersionId"]})
            if len(keys) >= batch:
                exhausted = not page.get("IsTruncated", False)
                break
        for start in range(0, len(keys), batch):
            chunk = keys[start : start + batch]
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise CloudError(
                    f"DeleteObjects could not delete {len(errors)} object version(s), e.g. "
                    f"{first.get('Key')} ({first.get('Code')}: {first.get('Message')})",
                    aws_id=bucket,
                    code=str(first.get("Code") or "DeleteObjectsFailed"),
                )
            deleted += len(chunk)
        if exhausted:
            return deleted
