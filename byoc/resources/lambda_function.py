"""``aws_lambda_function``: a function whose code is a zip byoc builds itself (``package``).

The zip comes from ``PACKAGES`` (name → region → bytes; the engine registers byoc's packages), so
neither the plan nor the state carries it: only its hash, ``source_code_hash`` (Lambda's
``CodeSha256``), which discovery reads back. Discovery lists the functions whose names start with
the cluster's name and keeps those tagged for it. A create that finds the name taken adopts the
function when it is this address's (an earlier run stopped half-way) and brings it in line.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code
from byoc.aws.tags import ADDRESS_TAG, address_of, is_owned
from byoc.errors import CloudError
from byoc.model import Live
from byoc.resources._monitoring import changed_props, own_tags, sync_tags
from byoc.resources._shapes import block
from byoc.resources.base import ResourceType

#: the code packages byoc deploys: name → (region → the zip's bytes)
PACKAGES: dict[str, Callable[[str], bytes]] = {}
#: a new role (or its policy) is not usable by Lambda for a few seconds: AWS says so with this code
_PROPAGATION = frozenset({"InvalidParameterValueException"})
#: an update is still being applied: the next one must wait
_BUSY = frozenset({"ResourceConflictException", "TooManyRequestsException"})
#: props set by UpdateFunctionConfiguration
_CONFIG = ("description", "role", "handler", "runtime", "timeout", "memory_size", "tracing_config",
           "vpc_config", "dead_letter_config")


def register_package(name: str, build: Callable[[str], bytes]) -> None:
    """Make the zip ``build(region)`` deployable as ``package: name``."""
    PACKAGES[name] = build


def code_hash(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class LambdaFunction(ResourceType):
    kind = "aws_lambda_function"
    service = "lambda"
    seconds = (20.0, 10.0)
    force_new = frozenset({"function_name"})

    def discover(self, ctx: AwsContext) -> list[Live]:
        """Once per discovery pass (the permission kind reads the same functions)."""
        return list(ctx.memo("lambda", "functions", lambda: self._discover(ctx)))

    def _discover(self, ctx: AwsContext) -> list[Live]:
        lam = ctx.client("lambda")
        out = []
        for page in lam.get_paginator("list_functions").paginate():
            for fn in page.get("Functions") or ():
                if str(fn["FunctionName"]).startswith(f"{ctx.cluster}-"):
                    live = self._get(ctx, fn["FunctionName"])
                    if live is not None and is_owned(ctx, live.props["tags"]):
                        out.append(live)
        return sorted(out, key=lambda x: x.address)

    def read(self, ctx: AwsContext, aws_id: str) -> Live | None:
        live = self._get(ctx, aws_id)
        return live if live is not None and is_owned(ctx, live.props["tags"]) else None

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        want = _props(props)
        lam = ctx.client("lambda")
        params: dict[str, Any] = {
            "FunctionName": want["function_name"],
            "Code": {"ZipFile": _zip(ctx, address, want)},
            "Publish": False,
            "Tags": dict(want["tags"]),
            **_configuration(want),
        }
        if want["code_signing_config_arn"]:
            params["CodeSigningConfigArn"] = want["code_signing_config_arn"]
        try:
            ctx.retry(lambda: lam.create_function(**params), codes=_PROPAGATION, match=_is_propagation,
                      timeout=min(ctx.retry_timeout, 120.0))
        except ClientError as exc:
            if error_code(exc) != "ResourceConflictException":
                raise
            current = self._get(ctx, want["function_name"])
            if current is None or not (is_owned(ctx, current.props["tags"])
                                       and current.props["tags"].get(ADDRESS_TAG) == address):
                raise CloudError(f"a Lambda function named {want['function_name']} exists and is not this "
                                 "cluster's: delete or rename it", address=address,
                                 aws_id=want["function_name"], code="ResourceConflictException") from exc
            return self.update(ctx, current, want, changed_props(current.props, want))
        if want["reserved_concurrent_executions"] is not None:
            self._concurrency(ctx, want)
        return self._wait(ctx, want["function_name"])

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        want = _props(props)
        lam = ctx.client("lambda")
        name = live.id
        if changed & set(_CONFIG):
            ctx.retry(lambda: lam.update_function_configuration(FunctionName=name, **_configuration(want)),
                      codes=_BUSY | _PROPAGATION, timeout=min(ctx.retry_timeout, 300.0))
            self._wait(ctx, name)
        if changed & {"source_code_hash", "package"}:
            data = _zip(ctx, live.address, want)
            ctx.retry(lambda: lam.update_function_code(FunctionName=name, ZipFile=data), codes=_BUSY,
                      timeout=min(ctx.retry_timeout, 300.0))
            self._wait(ctx, name)
        if "reserved_concurrent_executions" in changed:
            if want["reserved_concurrent_executions"] is None:
                lam.delete_function_concurrency(FunctionName=name)
            else:
                self._concurrency(ctx, want)
        if "code_signing_config_arn" in changed:
            if want["code_signing_config_arn"]:
                lam.put_function_code_signing_config(FunctionName=name,
                                                     CodeSigningConfigArn=want["code_signing_config_arn"])
            else:
                lam.delete_function_code_signing_config(FunctionName=name)
        if "tags" in changed:
            arn = live.attrs["arn"]
            sync_tags(ctx, live.props["tags"], want["tags"],
                      tag=lambda tags: lam.tag_resource(Resource=arn, Tags=tags),
                      untag=lambda keys: lam.untag_resource(Resource=arn, TagKeys=keys))
        return self._wait(ctx, name)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        lam = ctx.client("lambda")
        try:
            ctx.retry(lambda: lam.delete_function(FunctionName=live.id), codes=_BUSY, timeout=120.0)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        ctx.poll(lambda: self._get(ctx, live.id), lambda x: x is None, timeout=300.0,
                 what=f"function {live.id} to be deleted")

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The provider's blocks as lists of one object; ``package`` (which of byoc's zips) has no
        provider attribute and stays in byoc's own values."""
        out = {k: v for k, v in values.items() if k != "package"}
        for name in ("tracing_config", "vpc_config", "dead_letter_config"):
            if name in out:
                out[name] = block(out[name])
        return out

    # -- helpers -------------------------------------------------------------------------------
    def _concurrency(self, ctx: AwsContext, want: Mapping[str, Any]) -> None:
        lam = ctx.client("lambda")
        ctx.retry(lambda: lam.put_function_concurrency(
            FunctionName=want["function_name"],
            ReservedConcurrentExecutions=int(want["reserved_concurrent_executions"])),
            codes=_BUSY, timeout=120.0)

    def _wait(self, ctx: AwsContext, name: str) -> Live:
        """The function once it is Active and no update is in progress."""
        live = ctx.poll(lambda: self._get(ctx, name),
                        lambda x: x is not None and x.attrs.get("state") in (None, "Active", "Failed")
                        and x.attrs.get("last_update_status") in (None, "Successful", "Failed"),
                        timeout=600.0, what=f"function {name} to be active")
        assert live is not None
        if live.attrs.get("state") == "Failed" or live.attrs.get("last_update_status") == "Failed":
            raise CloudError(f"Lambda could not set up function {name}: {live.attrs.get('reason')}",
                             address=live.address, aws_id=name, code="FunctionFailed")
        return live

    def _get(self, ctx: AwsContext, name: str) -> Live | None:
        lam = ctx.client("lambda")
        try:
            got = lam.get_function(FunctionName=name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        c = got["Configuration"]
        vpc = c.get("VpcConfig") or {}
        sha = str(c.get("CodeSha256") or "")
        props = _props({
            "function_name": c["FunctionName"],
            "description": c.get("Description") or "",
            "role": c.get("Role"),
            "handler": c.get("Handler"),
            "runtime": c.get("Runtime"),
            "timeout": c.get("Timeout") or 3,
            "memory_size": c.get("MemorySize") or 128,
            "reserved_concurrent_executions":
                (got.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
            "tracing_config": {"mode": (c.get("TracingConfig") or {}).get("Mode") or "PassThrough"},
            "vpc_config": {"subnet_ids": vpc.get("SubnetIds") or [],
                           "security_group_ids": vpc.get("SecurityGroupIds") or []}
            if vpc.get("SubnetIds") else None,
            "dead_letter_config": {"target_arn": (c.get("DeadLetterConfig") or {}).get("TargetArn")}
            if (c.get("DeadLetterConfig") or {}).get("TargetArn") else None,
            "code_signing_config_arn": _signing(ctx, name),
            "source_code_hash": sha,
            "package": next((n for n, build in sorted(PACKAGES.items())
                             if code_hash(build(ctx.region)) == sha), None),
            "tags": own_tags(got.get("Tags") or {}),
        })
        attrs = {"arn": c["FunctionArn"], "function_name": c["FunctionName"], "state": c.get("State"),
                 "last_update_status": c.get("LastUpdateStatus"),
                 "reason": c.get("StateReason") or c.get("LastUpdateStatusReason")}
        return Live(address_of(props["tags"], self.kind, c["FunctionName"]), self.kind, c["FunctionName"],
                    props, attrs)


def _signing(ctx: AwsContext, name: str) -> str | None:
    try:
        got = ctx.client("lambda").get_function_code_signing_config(FunctionName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return got.get("CodeSigningConfigArn") or None


def _is_propagation(exc: BaseException) -> bool:
    """The new role cannot be assumed yet, or its policy does not yet allow the network interfaces."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return "role" in message or "networkinterface" in message.replace(" ", "")


def _zip(ctx: AwsContext, address: str, want: Mapping[str, Any]) -> bytes:
    build = PACKAGES.get(str(want["package"]))
    if build is None:
        raise CloudError(f"byoc has no code package {want['package']!r}; this plan was made by another byoc "
                         "version: run `byoc plan` again", address=address, code="UnknownPackage")
    data = build(ctx.region)
    if want["source_code_hash"] and code_hash(data) != want["source_code_hash"]:
        raise CloudError("the function's code differs from the plan's (source_code_hash): the plan was made "
                         "by another byoc version; run `byoc plan` again", address=address,
                         code="CodeChanged")
    return data


def _configuration(want: Mapping[str, Any]) -> dict[str, Any]:
    vpc = want["vpc_config"] or {"subnet_ids": [], "security_group_ids": []}
    dlq = want["dead_letter_config"] or {}
    return {
        "Description": want["description"],
        "Role": want["role"],
        "Handler": want["handler"],
        "Runtime": want["runtime"],
        "Timeout": int(want["timeout"]),
        "MemorySize": int(want["memory_size"]),
        "TracingConfig": {"Mode": want["tracing_config"]["mode"]},
        "VpcConfig": {"SubnetIds": list(vpc["subnet_ids"]),
                      "SecurityGroupIds": list(vpc["security_group_ids"])},
        "DeadLetterConfig": {"TargetArn": dlq["target_arn"]} if dlq.get("target_arn") else {},
    }


def _props(props: Mapping[str, Any]) -> dict[str, Any]:
    """The blueprint's shape, exactly (id lists sorted: AWS keeps no order)."""
    vpc = props.get("vpc_config")
    dlq = props.get("dead_letter_config")
    concurrency = props.get("reserved_concurrent_executions")
    return {
        "function_name": props["function_name"],
        "description": props.get("description") or "",
        "role": props["role"],
        "handler": props["handler"],
        "runtime": props["runtime"],
        "timeout": int(props.get("timeout") or 3),
        "memory_size": int(props.get("memory_size") or 128),
        "reserved_concurrent_executions": int(concurrency) if concurrency is not None else None,
        "tracing_config": {"mode": (props.get("tracing_config") or {}).get("mode") or "PassThrough"},
        "vpc_config": {"subnet_ids": sorted(vpc["subnet_ids"]),
                       "security_group_ids": sorted(vpc["security_group_ids"])} if vpc else None,
        "dead_letter_config": {"target_arn": dlq["target_arn"]} if dlq and dlq.get("target_arn") else None,
        "code_signing_config_arn": props.get("code_signing_config_arn") or None,
        "source_code_hash": props.get("source_code_hash") or "",
        "package": props.get("package"),
        "tags": dict(props["tags"]),
    }


KIND = LambdaFunction()
