"""Shell scripts on the cluster's nodes through SSM Run Command (``AWS-RunShellScript``), and SQL on
a node's Proton through it: no open port, no SSH key, and it works behind an internal load balancer.

One ``SendCommand`` reaches every target node; each node's invocation is then polled until it ends.
A node SSM cannot reach (its agent not registered, no route to SSM's endpoints, stopped) is a
result with ``reachable`` false, never an exception and never silently skipped: callers say what
they did without it. ``GetCommandInvocation`` keeps at most 24,000 characters of a node's output,
so scripts print what the caller needs, not everything.

The admin password never leaves the node: ``sql_script`` reads it there with the node's own role
(the instance profile may read the cluster's secret) and hands it to curl on stdin.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, to_cloud_error
from byoc.errors import ByocError, CloudError
from byoc.model import parse_address
from byoc.state.model import State

DOCUMENT = "AWS-RunShellScript"
#: the invocation states after which nothing more happens
FINAL = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated",
                   "DeliveryTimedOut", "ExecutionTimedOut", "InvalidPlatform", "AccessDenied"})
#: the states in which the script never ran on the node
NOT_DELIVERED = frozenset({"Undeliverable", "Terminated", "DeliveryTimedOut", "InvalidPlatform",
                           "AccessDenied", "Unreachable"})
#: AWS's limit of instance ids in one SendCommand
MAX_TARGETS = 50
#: what GetCommandInvocation keeps of a node's standard output
OUTPUT_LIMIT = 24_000


@dataclass(frozen=True)
class NodeRun:
    """What a script did on one node."""

    node: str
    instance_id: str
    status: str  # SSM's invocation status, or "Unreachable" when SSM refused the instance
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    detail: str = ""  # SSM's status details, or why the node could not be reached

    @property
    def ok(self) -> bool:
        return self.status == "Success"

    @property
    def reachable(self) -> bool:
        """False when the script never ran there (SSM could not deliver it)."""
        return self.status not in NOT_DELIVERED

    def describe(self) -> str:
        """One line for a message: the node, what happened, and the script's last words."""
        what = f"node {self.node} ({self.instance_id}): "
        if not self.reachable:
            return what + f"not reachable through SSM ({self.detail or self.status})"
        if self.ok:
            return what + "ok"
        tail = (self.stderr or self.stdout).strip().splitlines()[-3:]
        rc = "" if self.exit_code in (None, -1) else f", exit {self.exit_code}"
        return what + f"{self.status}{rc}" + (f": {' / '.join(tail)}" if tail else "")

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "instance_id": self.instance_id, "status": self.status,
                "exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr,
                "detail": self.detail or None}


def node_instances(state: State | None, nodes: list[str] | None = None) -> dict[str, str]:
    """The state's nodes (key → instance id), in node order; ``nodes`` picks some, by key."""
    found = {
        parse_address(a)[2] or "": r.id
        for a, r in (state.resources.items() if state else ())
        if r.kind == "aws_instance" and r.id
    }
    if not found:
        cluster = state.cluster if state else "this cluster"
        raise ByocError(f"{cluster} has no nodes in its state: run `byoc apply` first")
    if nodes:
        missing = [n for n in nodes if n not in found]
        if missing:
            raise ByocError(
                f"no node {', '.join(missing)} in the state (nodes: {', '.join(node_order(found))}); "
                "use --node with one of those"
            )
        found = {n: found[n] for n in nodes}
    return {k: found[k] for k in node_order(found)}


def node_order(keys: Mapping[str, Any] | list[str]) -> list[str]:
    return sorted(keys, key=lambda k: (len(k), k))


def run_script(
    ctx: AwsContext,
    targets: Mapping[str, str],
    script: str,
    *,
    comment: str,
    timeout: int = 60,
    poll: float = 0.5,
) -> dict[str, NodeRun]:
    """Run ``script`` (bash) as root on each target node (key → instance id); each node's result.

    ``timeout`` bounds the script's run on the node (SSM kills it after that) and, with the time
    SSM needs to deliver it, how long this waits. An instance SSM does not manage is asked about
    alone, so one unreachable node does not hide the others' results.
    """
    comment = comment[:100]
    items = list(targets.items())
    results: dict[str, NodeRun] = {}
    for i in range(0, len(items), MAX_TARGETS):
        batch = dict(items[i : i + MAX_TARGETS])
        sent = _send(ctx, batch, script, comment, timeout)
        if sent is None:  # some instance SSM does not manage: find out which, one by one
            pending: dict[str, tuple[str, str]] = {}
            for node, iid in batch.items():
                one = _send(ctx, {node: iid}, script, comment, timeout)
                if one is None:
                    results[node] = NodeRun(node, iid, "Unreachable", None,
                                            detail="the SSM agent is not registered for this instance "
                                            "(stopped, no route to SSM, or no instance profile)")
                else:
                    pending[node] = (iid, one)
        else:
            pending = {node: (iid, sent) for node, iid in batch.items()}
        results.update(_wait(ctx, pending, timeout=timeout, poll=poll))
    return {k: results[k] for k in targets}


def _send(ctx: AwsContext, batch: Mapping[str, str], script: str, comment: str, timeout: int) -> str | None:
    """SendCommand to the batch; its command id, or None when SSM refuses an instance id."""
    try:
        out = ctx.client("ssm").send_command(
            InstanceIds=list(batch.values()),
            DocumentName=DOCUMENT,
            Comment=comment,
            TimeoutSeconds=max(30, min(timeout, 2_592_000)),  # delivery: AWS's bounds
            Parameters={"commands": [script], "executionTimeout": [str(max(1, timeout))]},
        )
    except Exception as exc:
        if error_code(exc) == "InvalidInstanceId":
            return None
        raise to_cloud_error(exc, None, ", ".join(batch.values())) from exc
    return str(out["Command"]["CommandId"])


def _wait(
    ctx: AwsContext, pending: dict[str, tuple[str, str]], *, timeout: int, poll: float
) -> dict[str, NodeRun]:
    """Poll each invocation until it ends; a node still running after the deadline is TimedOut."""
    ssm = ctx.client("ssm")
    done: dict[str, NodeRun] = {}
    deadline = time.monotonic() + timeout + 60  # delivery and SSM's own bookkeeping
    delay = poll
    while pending:
        for node, (iid, command_id) in list(pending.items()):
            try:
                inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=iid)
            except Exception as exc:
                if error_code(exc) == "InvocationDoesNotExist":  # eventual consistency, just after sending
                    continue
                raise to_cloud_error(exc, None, iid) from exc
            status = str(inv.get("Status") or "Pending")
            if status in FINAL:
                done[node] = NodeRun(
                    node, iid, status, _int(inv.get("ResponseCode")),
                    str(inv.get("StandardOutputContent") or ""),
                    str(inv.get("StandardErrorContent") or ""),
                    str(inv.get("StatusDetails") or ""),
                )
                del pending[node]
        if not pending:
            break
        if time.monotonic() > deadline:
            for node, (iid, command_id) in pending.items():
                _cancel(ctx, command_id, iid)
                done[node] = NodeRun(node, iid, "TimedOut", None,
                                     detail=f"no answer from SSM within {timeout + 60} s")
            break
        ctx.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    return done


def _cancel(ctx: AwsContext, command_id: str, iid: str) -> None:
    # best effort: the command's own executionTimeout still applies
    with contextlib.suppress(Exception):
        ctx.client("ssm").cancel_command(CommandId=command_id, InstanceIds=[iid])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- SQL on a node ----------------------------------------------------------------------------
#: exit codes of ``sql_script`` (besides 0): Proton answered with an error; Proton did not answer;
#: the node could not read the admin password
SQL_FAILED, SQL_UNREACHABLE, SQL_NO_PASSWORD = 3, 4, 5
#: Proton's batch ("table" mode) HTTP port, published on every node's loopback
SQL_PORT = 8123


@dataclass(frozen=True)
class QueryResult:
    """A query's answer on one node: column names and types, and rows (as JSONCompact gives them)."""

    node: str
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    statistics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "columns": self.columns, "types": self.types, "rows": self.rows,
                "statistics": self.statistics}


def sql_script(secret_arn: str, region: str, sql: str, *, max_seconds: int = 60) -> str:
    """A bash script that runs ``sql`` on the node's Proton as ``default`` and prints its answer as
    JSONCompact (a statement that returns nothing prints nothing). The password is read on the node
    and passed to curl on stdin, so it is on no command line, in no file and in no output."""
    encoded = base64.b64encode(sql.encode()).decode()
    return "\n".join([
        "#!/bin/bash",
        "set -uo pipefail",
        "umask 077",
        f"SECRET_ARN={shlex.quote(secret_arn)}",
        f"REGION={shlex.quote(region)}",
        "body=$(mktemp) sqlf=$(mktemp)",
        "trap 'rm -f \"$body\" \"$sqlf\"' EXIT",
        f"printf %s {encoded} | base64 -d >\"$sqlf\"",
        "secret=$(AWS_PAGER='' aws secretsmanager get-secret-value --secret-id \"$SECRET_ARN\" "
        "--region \"$REGION\" --query SecretString --output text 2>&1) || "
        f"{{ echo \"byoc: cannot read the admin password: $secret\" >&2; exit {SQL_NO_PASSWORD}; }}",
        "secret=${secret//\\\\/\\\\\\\\}; secret=${secret//\\\"/\\\\\\\"}",
        "code=$(printf 'user = \"default:%s\"\\n' \"$secret\" | curl -sS -K - -o \"$body\" "
        f"-w '%{{http_code}}' --max-time {int(max_seconds)} --data-binary @\"$sqlf\" "
        f"'http://127.0.0.1:{SQL_PORT}/?default_format=JSONCompact&output_format_json_quote_64bit_integers=0"
        f"&max_execution_time={int(max_seconds)}')",  # Proton stops the query itself, and says so
        "rc=$?",
        "unset secret",
        "if ((rc != 0)); then",
        f"  echo \"byoc: Proton does not answer on 127.0.0.1:{SQL_PORT} (curl exit $rc)\" >&2",
        f"  exit {SQL_UNREACHABLE}",
        "fi",
        f"if [[ \"$code\" != 200 ]]; then head -c 4000 \"$body\" >&2; exit {SQL_FAILED}; fi",
        "cat \"$body\"",
    ]) + "\n"


def run_sql(
    ctx: AwsContext,
    targets: Mapping[str, str],
    secret_arn: str,
    sql: str,
    *,
    max_seconds: int = 60,
) -> dict[str, QueryResult | NodeRun]:
    """Run ``sql`` on each target node: its ``QueryResult``, or the ``NodeRun`` that failed."""
    runs = run_script(ctx, targets, sql_script(secret_arn, ctx.region, sql, max_seconds=max_seconds),
                      comment=f"byoc {ctx.cluster}: query", timeout=max_seconds + 30)
    out: dict[str, QueryResult | NodeRun] = {}
    for node, run in runs.items():
        out[node] = parse_sql_output(run) if run.ok else run
    return out


def parse_sql_output(run: NodeRun) -> QueryResult | NodeRun:
    """The JSONCompact answer in a successful run's output (an empty answer is no rows)."""
    text = run.stdout.strip()
    if not text:
        return QueryResult(run.node, [], [], [], {})
    if len(run.stdout) >= OUTPUT_LIMIT:
        return NodeRun(run.node, run.instance_id, "Failed", run.exit_code, run.stdout[:200], "",
                       f"the answer is longer than SSM returns ({OUTPUT_LIMIT} characters): add a LIMIT")
    try:
        doc = json.loads(text)
        meta = doc.get("meta") or []
        return QueryResult(run.node, [str(m["name"]) for m in meta], [str(m["type"]) for m in meta],
                           list(doc.get("data") or []), dict(doc.get("statistics") or {}))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return NodeRun(run.node, run.instance_id, "Failed", run.exit_code, text[:200], "",
                       f"Proton's answer is not JSONCompact ({type(exc).__name__})")


def secret_arn_of(state: State | None) -> str:
    """The admin password's secret, from the state."""
    for r in (state.resources.values() if state else ()):
        if r.kind == "aws_secretsmanager_secret" and r.id:
            return str(r.attrs.get("arn") or r.id)
    raise CloudError("the state holds no admin password secret: run `byoc apply` first")
