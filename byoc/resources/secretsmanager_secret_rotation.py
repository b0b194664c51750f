"""``aws_secretsmanager_secret_rotation``: Secrets Manager rotates a secret with a Lambda function on a
schedule (``rotation_rules``).

Untaggable (it is a setting of the secret): its id is the secret's ARN, and its address is the
secret's with this kind, so ``aws_secretsmanager_secret.admin`` has ``…_rotation.admin``. Discovery
reads the cluster's secrets (by tag) and reports those with rotation on. Create and update call
RotateSecret with ``RotateImmediately=False`` (the value was just made: the first rotation comes at
the schedule; Secrets Manager only runs the function's testSecret step now); delete cancels the
rotation and leaves the secret and its value alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import ADDRESS_TAG
from byoc.model import Live
from byoc.resources.base import ResourceType
from byoc.resources.secretsmanager_secret import listed

SECRET_KIND = "aws_secretsmanager_secret"
#: Secrets Manager cannot invoke a function whose permission is too new yet
_SETTLE = frozenset({"AccessDeniedException", "InvalidRequestException"})


class SecretRotation(ResourceType):
    kind = "aws_secretsmanager_secret_rotation"
    service = "secretsmanager"
    force_new = frozenset({"secret_id"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        """From ListSecrets' answer (it carries the rotation settings), shared with the secret kind."""
        out = []
        for meta in listed(ctx):
            address = {t["Key"]: t["Value"] for t in meta.get("Tags") or ()}.get(ADDRESS_TAG, "")
            if address.startswith(f"{SECRET_KIND}."):
                live = self._live(meta, self.kind + address[len(SECRET_KIND):])
                if live is not None:
                    out.append(live)
        return sorted(out, key=lambda x: x.address)

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        return next((x for x in self.discover(ctx) if x.id == aws_id), None)

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        want = _props(props)
        self._rotate(ctx, address, want)
        live = self._read(ctx, want["secret_id"], address)
        if live is None:
            raise RuntimeError(f"{address}: rotation of {want['secret_id']} is not on after RotateSecret")
        return Live(address, self.kind, live.id, want, live.attrs)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        want = _props(props)
        if changed - {"rotate_immediately"}:
            self._rotate(ctx, live.address, want)
        return Live(live.address, self.kind, live.id, want, dict(live.attrs))

    def delete(self, ctx: AwsContext, live: Live) -> None:
        try:
            ctx.client("secretsmanager").cancel_rotate_secret(SecretId=live.id)
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                return
            # a secret scheduled for deletion refuses every change: its rotation goes with it
            if not (code == "InvalidRequestException" and "delet" in str(exc).lower()):
                raise

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``rotation_rules`` is a block: a list of one object."""
        out = dict(values)
        if isinstance(out.get("rotation_rules"), Mapping):
            out["rotation_rules"] = [dict(out["rotation_rules"])]
        return out

    def _rotate(self, ctx: AwsContext, address: str, want: Mapping[str, Any]) -> None:
        rules = want["rotation_rules"]
        params: dict[str, Any] = {}
        if rules["automatically_after_days"] is not None:
            params["AutomaticallyAfterDays"] = int(rules["automatically_after_days"])
        if rules["schedule_expression"]:
            params["ScheduleExpression"] = rules["schedule_expression"]
        if rules["duration"]:
            params["Duration"] = rules["duration"]
        sm = ctx.client("secretsmanager")
        ctx.retry(lambda: sm.rotate_secret(SecretId=want["secret_id"],
                                           RotationLambdaARN=want["rotation_lambda_arn"],
                                           RotationRules=params,
                                           RotateImmediately=bool(want["rotate_immediately"])),
                  codes=_SETTLE, match=_is_settling, timeout=min(ctx.retry_timeout, 120.0))

    def _read(self, ctx: AwsContext, secret_arn: str, address: str) -> Live | None:
        try:
            meta = ctx.client("secretsmanager").describe_secret(SecretId=secret_arn)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return self._live(meta, address)

    def _live(self, meta: Mapping[str, Any], address: str) -> Live | None:
        if not meta.get("RotationEnabled") or not meta.get("RotationLambdaARN"):
            return None
        rules = meta.get("RotationRules") or {}
        props = _props({
            "secret_id": meta["ARN"],
            "rotation_lambda_arn": meta["RotationLambdaARN"],
            "rotation_rules": {
                "automatically_after_days": None if rules.get("ScheduleExpression")
                else rules.get("AutomaticallyAfterDays"),
                "schedule_expression": rules.get("ScheduleExpression"),
                "duration": rules.get("Duration"),
            },
            "rotate_immediately": False,  # a create-time choice: AWS does not report it
        })
        attrs = {"id": meta["ARN"], "next_rotation_date": str(meta.get("NextRotationDate") or "") or None}
        return Live(address, self.kind, meta["ARN"], props, attrs)


def _is_settling(exc: BaseException) -> bool:
    """Secrets Manager cannot invoke the function yet (its permission or role is seconds old)."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return "lambda" in message and ("invoke" in message or "permission" in message or "access" in message)


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    rules = props.get("rotation_rules") or {}
    days = rules.get("automatically_after_days")
    return {
        "secret_id": props["secret_id"],
        "rotation_lambda_arn": props["rotation_lambda_arn"],
        "rotation_rules": {
            "automatically_after_days": int(days) if days is not None else None,
            "schedule_expression": rules.get("schedule_expression") or None,
            "duration": rules.get("duration") or None,
        },
        "rotate_immediately": bool(props.get("rotate_immediately")),
    }


KIND = SecretRotation()
