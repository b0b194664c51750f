"""What every preflight check shares: the answer type, its statuses, and small AWS lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"


@dataclass(frozen=True)
class Check:
    """The answer of one check: ``status`` is ok, warn, fail or skipped; ``fix`` says what to do."""

    name: str
    status: str
    message: str
    fix: str = ""


class Skip(Exception):
    """A check that cannot run because something it needs failed elsewhere; str() says why."""


def reason(exc: BaseException) -> str:
    """``Code: message`` of an AWS error (or the exception's text)."""
    code = error_code(exc)
    if code is None:
        return f"{type(exc).__name__}: {exc}"
    message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
    return f"{code}: {message}".rstrip(": ")


def type_info(ctx: AwsContext, instance_type: str) -> dict[str, Any] | None:
    """DescribeInstanceTypes' entry for ``instance_type``; None when EC2 does not know it."""
    def fetch() -> dict[str, Any] | None:
        try:
            types = ctx.client("ec2").describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
        except ClientError as exc:
            if error_code(exc) == "InvalidInstanceType":
                return None
            raise
        return dict(types[0]) if types else None
    return ctx.memo("ec2", f"preflight:type:{instance_type}", fetch)


def vcpus(info: dict[str, Any]) -> int:
    return int((info.get("VCpuInfo") or {}).get("DefaultVCpus") or 0)
