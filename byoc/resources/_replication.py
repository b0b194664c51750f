"""The data bucket's replication configuration (``replication_configuration``, the provider's inline
block of ``aws_s3_bucket``) in one normal form, and its PutBucketReplication / GetBucketReplication
shapes. Pure: no AWS calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: GetBucketReplication's answer when the bucket has no replication configuration
NOT_FOUND = "ReplicationConfigurationNotFoundError"
#: the provider's value of ``delete_marker_replication_status`` when delete markers are replicated
# (it accepts only this; an empty string means they are not)
ENABLED = "Enabled"


def replication_from_props(value: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The ``replication_configuration`` prop (a list of at most one ``{role, rules}``) in one shape:
    every key present, rules sorted by id."""
    return [{"role": str(v["role"]), "rules": sorted((_rule(r) for r in v.get("rules") or ()),
                                                    key=lambda r: str(r["id"]))}
            for v in value or ()]


def _rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    dest = (rule.get("destination") or [{}])[0]
    sse = [{"sse_kms_encrypted_objects": [{"enabled": bool(c["enabled"])}
                                          for c in s.get("sse_kms_encrypted_objects") or ()]}
           for s in rule.get("source_selection_criteria") or ()]
    return {
        "id": str(rule.get("id") or ""),
        "priority": int(rule.get("priority") or 0),
        "status": str(rule.get("status") or ENABLED),
        "filter": [{"prefix": str(f.get("prefix") or "")} for f in rule.get("filter") or ()],
        "delete_marker_replication_status": str(rule.get("delete_marker_replication_status") or ""),
        "destination": [{
            "bucket": str(dest.get("bucket") or ""),
            "storage_class": str(dest.get("storage_class") or "STANDARD"),
            "replica_kms_key_id": dest.get("replica_kms_key_id") or None,
        }],
        "source_selection_criteria": [s for s in sse if s["sse_kms_encrypted_objects"]],
    }


def replication_to_aws(value: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """PutBucketReplication's ReplicationConfiguration; None when there is none (delete it)."""
    conf = replication_from_props(value)
    if not conf:
        return None
    rules = []
    for r in conf[0]["rules"]:
        dest = r["destination"][0]
        destination: dict[str, Any] = {"Bucket": dest["bucket"], "StorageClass": dest["storage_class"]}
        if dest["replica_kms_key_id"]:
            destination["EncryptionConfiguration"] = {"ReplicaKmsKeyID": dest["replica_kms_key_id"]}
        item: dict[str, Any] = {
            "ID": r["id"], "Priority": r["priority"], "Status": r["status"],
            "Filter": {"Prefix": r["filter"][0]["prefix"] if r["filter"] else ""},
            "DeleteMarkerReplication": {
                "Status": ENABLED if r["delete_marker_replication_status"] == ENABLED else "Disabled"
            },
            "Destination": destination,
        }
        if r["source_selection_criteria"]:
            enabled = r["source_selection_criteria"][0]["sse_kms_encrypted_objects"][0]["enabled"]
            item["SourceSelectionCriteria"] = {
                "SseKmsEncryptedObjects": {"Status": "Enabled" if enabled else "Disabled"}
            }
        rules.append(item)
    return {"Role": conf[0]["role"], "Rules": rules}


def replication_from_aws(config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """GetBucketReplication's ReplicationConfiguration in the prop's shape. S3 requires
    SourceSelectionCriteria.SseKmsEncryptedObjects together with a replica key; an answer that
    leaves the criteria out (moto's) but names a replica key reads as criteria enabled."""
    if not config:
        return []
    rules = []
    for r in config.get("Rules") or ():
        dest = r.get("Destination") or {}
        key = (dest.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
        flt = r.get("Filter") or {}
        prefix = flt.get("Prefix", (flt.get("And") or {}).get("Prefix", r.get("Prefix", "")))
        criteria = (r.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects")
        if criteria is None and key:
            criteria = {"Status": "Enabled"}
        delete_markers = (r.get("DeleteMarkerReplication") or {}).get("Status")
        rules.append({
            "id": r.get("ID", ""),
            "priority": r.get("Priority", 0),
            "status": r.get("Status", ""),
            "filter": [{"prefix": prefix}],
            "delete_marker_replication_status": ENABLED if delete_markers == ENABLED else "",
            "destination": [{"bucket": dest.get("Bucket", ""), "storage_class": dest.get("StorageClass"),
                             "replica_kms_key_id": key}],
            "source_selection_criteria": [] if criteria is None else [
                {"sse_kms_encrypted_objects": [{"enabled": criteria.get("Status") == "Enabled"}]}
            ],
        })
    return replication_from_props([{"role": config.get("Role", ""), "rules": rules}])
