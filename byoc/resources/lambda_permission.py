"""``aws_lambda_permission``: one statement of a function's resource policy (who may invoke it).

Untaggable: its id is ``<function>/<statement id>`` and discovery reads the resource policy of each
function the cluster owns. A permission cannot be changed, only replaced. AddPermission with a
statement id already there is answered ResourceConflictException: the same statement (an earlier
run that stopped after it) is taken as done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.errors import CloudError
from byoc.model import Live, make_address
from byoc.resources.base import ResourceType
from byoc.resources.lambda_function import KIND as FUNCTION

PROPS = ("function_name", "statement_id", "action", "principal", "source_arn", "source_account")


class LambdaPermission(ResourceType):
    kind = "aws_lambda_permission"
    service = "lambda"
    force_new = frozenset(PROPS)

    def discover(self, ctx: AwsContext) -> list[Live]:
        out = []
        for fn in FUNCTION.discover(ctx):
            name = fn.address.split(".", 1)[1] if not fn.address.startswith(f"{fn.kind}.unmanaged") else None
            for st in _statements(ctx, fn.id):
                address = make_address(self.kind, name, None) if name else ""
                out.append(self._live(address, fn.id, st))
        return [x for x in out if x.address]

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        function, _, sid = aws_id.partition("/")
        return next((x for x in self.discover(ctx) if x.id == aws_id), None) if sid and function else None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        want = _props(props)
        params: dict[str, Any] = {
            "FunctionName": want["function_name"], "StatementId": want["statement_id"],
            "Action": want["action"], "Principal": want["principal"],
        }
        if want["source_arn"]:
            params["SourceArn"] = want["source_arn"]
        if want["source_account"]:
            params["SourceAccount"] = want["source_account"]
        lam = ctx.client("lambda")
        try:
            ctx.retry(lambda: lam.add_permission(**params), codes=frozenset({"TooManyRequestsException"}),
                      timeout=120.0)
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException":
                raise
            there = next((st for st in _statements(ctx, want["function_name"])
                          if _props({**st, "function_name": want["function_name"]}) == want), None)
            if there is None:
                raise CloudError(f"function {want['function_name']} has a statement {want['statement_id']} "
                                 "that differs from the plan's: run `byoc plan` again", address=address,
                                 aws_id=f"{want['function_name']}/{want['statement_id']}",
                                 code="ResourceConflictException") from exc
        return Live(address, self.kind, f"{want['function_name']}/{want['statement_id']}", want, {})

    def delete(self, ctx: AwsContext, live: Live) -> None:
        function, _, sid = live.id.partition("/")
        try:
            ctx.client("lambda").remove_permission(FunctionName=function, StatementId=sid)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise

    def _live(self, address: str, function: str, st: Mapping[str, Any]) -> Live:
        props = _props({**st, "function_name": function})
        return Live(address, self.kind, f"{function}/{props['statement_id']}", props, {})


def _statements(ctx: AwsContext, function: str) -> list[dict[str, Any]]:
    """The function's resource policy as permission props (without function_name)."""
    try:
        policy = json.loads(ctx.client("lambda").get_policy(FunctionName=function)["Policy"])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise
    out = []
    for st in policy.get("Statement") or ():
        principal = st.get("Principal")
        if isinstance(principal, Mapping):
            principal = principal.get("Service") or principal.get("AWS")
        condition = st.get("Condition") or {}
        out.append({
            "statement_id": st.get("Sid"),
            "action": st.get("Action"),
            "principal": principal,
            "source_arn": (condition.get("ArnLike") or {}).get("AWS:SourceArn"),
            "source_account": (condition.get("StringEquals") or {}).get("AWS:SourceAccount"),
        })
    return out


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (props.get(k) or None) for k in PROPS}


KIND = LambdaPermission()
