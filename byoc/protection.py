"""Why a protected (data-bearing) resource cannot be replaced, and the ways forward.

The planner collects every replacement of a bucket, data volume or created KMS key that the user
did not consent to; ``blocked_message`` turns them into one PlanError text. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from byoc.model import UNKNOWN, contains_unknown
from byoc.plan import AttrChange


@dataclass(frozen=True)
class Blocked:
    """A protected resource that a plan would replace without consent."""

    address: str
    kind: str
    aws_id: str
    #: the attributes that force the replacement (empty: ``-replace`` asked for it)
    forcing: tuple[AttrChange, ...] = ()
    requested: bool = False


#: (kind, attribute) → how to keep the old value in the spec ({before} is the old value); an
#: (address, attribute) entry comes first (the log bucket is named by another field)
_KEEP = {
    ("aws_s3_bucket.logs", "bucket"): "set storage.access_logs.bucket_name back to {before}",
    ("aws_s3_bucket", "bucket"): "set storage.bucket_name back to {before}",
    ("aws_ebs_volume", "availability_zone"):
        "keep {before} in aws.availability_zones (a node stays in its data volume's zone while the "
        "spec lists that zone; new zones can be added)",
    ("aws_ebs_volume", "encrypted"): "keep security.encryption.enabled as it was",
    ("aws_ebs_volume", "kms_key_id"):
        "keep security.encryption (create_kms_key / kms_key_arn) as it was, so the volume keeps key {before}",
    ("aws_ebs_volume", "size"):
        "keep compute.disk_size_gb at {before} or more (EBS volumes grow, never shrink)",
}
#: kind → what replacing it loses ({id} is its AWS id)
_LOSS = {
    "aws_s3_bucket": "deletes bucket {id} with every object version in it (backup manifests and "
                     "anything else stored there) and creates a new, empty bucket",
    "aws_ebs_volume": "deletes volume {id} with everything its node stored on it and creates a new, "
                      "empty volume",
    "aws_kms_key": "schedules key {id} for deletion: everything encrypted with it (bucket objects, "
                   "data volumes, the admin password secret) becomes unreadable",
}
#: kind → how to keep the data in the new shape
_MOVE = {
    "aws_s3_bucket": "to keep the objects, copy them out first (`aws s3 sync s3://{id} s3://<another "
                     "bucket>`), apply with --include-data, then copy them into the new bucket",
    "aws_ebs_volume": "to keep the data in the new shape: `byoc backup SPEC`, then apply the change "
                      "with --include-data, then `byoc restore SPEC BACKUP_ID` (docs/operations.md, "
                      "\"Backups\" and \"Restore\")",
}


def _value(v: Any) -> str:
    if v is UNKNOWN or contains_unknown(v):
        return "(known after apply)"
    return repr(v)


def _why(b: Blocked) -> str:
    if b.requested:
        return "-replace asks for its replacement"
    parts = [f"{a.name} cannot change in place ({_value(a.before)} -> {_value(a.after)})" for a in b.forcing]
    return "; ".join(parts)


def _ways(b: Blocked) -> list[str]:
    if b.requested:
        keep = [f"leave out -replace {b.address}"]
    else:
        keep = [_KEEP.get((b.address, a.name), _KEEP.get((b.kind, a.name), f"keep {a.name} at {{before}}"))
                .format(before=_value(a.before)) for a in b.forcing]
    loss = _LOSS.get(b.kind, "deletes {id} with what it holds and creates a new one").format(id=b.aws_id)
    ways = [f"keep the old value: {'; '.join(keep)}",
            f"explicit consent: --include-data {loss}"]
    if b.kind in _MOVE:
        ways.append(_MOVE[b.kind].format(id=b.aws_id))
    return ways


def blocked_message(blocked: Iterable[Blocked]) -> str:
    """One message for every blocked replacement: what, why, and the ways forward."""
    items = sorted(blocked, key=lambda b: b.address)
    lines = [
        f"this plan would replace {len(items)} resource{'s' if len(items) != 1 else ''} that "
        "hold{} data; nothing was changed".format("s" if len(items) == 1 else ""),
    ]
    for b in items:
        lines.append(f"  {b.address} ({b.aws_id}): {_why(b)}")
        lines.extend(f"    - {w}" for w in _ways(b))
    return "\n".join(lines)
