"""Cross-region replication of the data bucket (``storage.replication``): the role S3 assumes to
replicate, and the bucket's ``replication_configuration`` (the provider's inline block) naming it.
The destination bucket is the user's; the log bucket is not replicated."""

from __future__ import annotations

from typing import Any

from byoc.blueprint.base import Builder
from byoc.blueprint.policy import document, statement
from byoc.model import Ref

#: the replication role's inline policy
REPLICATION_POLICY = "s3-replication"
#: the one rule: the whole bucket (data and backups/)
RULE_ID = "replicate-all"


def replication_role_name(cluster: str) -> str:
    return f"{cluster}-replication"


def build_replication(b: Builder, bucket_arn: str, kms_key: Any) -> list[dict[str, Any]]:
    """The data bucket's ``replication_configuration`` ([] without ``storage.replication``), adding
    the role it names: trusted by S3 for this account only, allowed to read the data bucket's
    object versions and to replicate them (with their tags) into the destination, and, for SSE-KMS,
    to decrypt with the bucket's key and encrypt with the destination's key, each through S3 in its
    own region. Delete markers are not replicated: a deletion here never hides the replica."""
    conf = b.spec.data["storage"].get("replication")
    if not conf:
        return []
    dest = str(conf["destination_bucket_arn"])
    replica_key = conf.get("destination_kms_key_arn") or None
    suffix = ".amazonaws.com.cn" if b.partition == "aws-cn" else ".amazonaws.com"
    statements = [
        statement("Allow", ["s3:GetReplicationConfiguration", "s3:ListBucket"], [bucket_arn],
                  sid="SourceBucket"),
        statement("Allow", ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionTagging"], [f"{bucket_arn}/*"], sid="SourceObjects"),
        statement("Allow", ["s3:ReplicateObject", "s3:ReplicateTags"], [f"{dest}/*"],
                  sid="DestinationObjects"),
    ]
    if kms_key is not None:
        # with S3 Bucket Keys the encryption context is the bucket's ARN, without them the object's
        statements.append(statement("Allow", ["kms:Decrypt"], [kms_key], sid="DecryptSource", condition={
            "StringLike": {"kms:ViaService": [f"s3.{b.region}{suffix}"],
                           "kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]},
        }))
    if replica_key is not None:
        region = replica_key.split(":")[3]
        statements.append(statement("Allow", ["kms:Encrypt"], [replica_key], sid="EncryptReplicas",
                                    condition={"StringLike": {
                                        "kms:ViaService": [f"s3.{region}{suffix}"],
                                        "kms:EncryptionContext:aws:s3:arn": [dest, f"{dest}/*"],
                                    }}))
    name = replication_role_name(b.cluster)
    role = b.add("aws_iam_role", "replication", None, {
        "name": name,
        "path": f"/byoc/{b.cluster}/",
        "description": f"byoc {b.cluster}: S3 replication of the data bucket",
        "assume_role_policy": document(statement(
            "Allow", ["sts:AssumeRole"], principal={"Service": ["s3.amazonaws.com"]},
            condition={"StringEquals": {"aws:SourceAccount": [b.facts.account]}},
        )),
        "inline_policies": {REPLICATION_POLICY: document(*statements)},
        "max_session_duration": 3600,
    }, label=name)
    return [{"role": Ref(role, "arn"), "rules": [{
        "id": RULE_ID,
        "priority": 1,
        "status": "Enabled",
        "filter": [{"prefix": ""}],
        "delete_marker_replication_status": "",
        "destination": [{"bucket": dest, "storage_class": conf.get("storage_class") or "STANDARD",
                         "replica_kms_key_id": replica_key}],
        "source_selection_criteria": [{"sse_kms_encrypted_objects": [{"enabled": True}]}]
        if replica_key is not None else [],
    }]}]
