"""``byoc rotate-password``: a new admin password in the secret, applied node by node through SSM.

1. Every node says which version of the secret its users.d override holds (``--status`` of the
   node-side ``byoc-proton-password``; it compares hashes on the node and prints only the stage).
2. When every node holds AWSCURRENT, a new value is generated (GetRandomPassword, no punctuation,
   as at create) and put (PutSecretValue: it becomes AWSCURRENT, the old one AWSPREVIOUS). When
   some node does not, an earlier rotation stopped half-way: it resumes with the value already in
   AWSCURRENT and generates nothing (a new value would drop AWSPREVIOUS, which those nodes still use).
3. Node by node, in node order, the node-side script (sent whole in the command, so nodes booted
   before it existed work too) writes the override and checks that the new password logs in, else
   puts the previous override back. Then the node must answer ``SELECT 1`` with the new password
   (``run_sql``) and be healthy in every target group before the next one goes. The first node that
   fails stops the roll: it keeps (or is back on) the old value and the rest are untouched.

The password never leaves AWS and the nodes: byoc only ever sees it between GetRandomPassword and
PutSecretValue, and no hash of it is printed either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, to_cloud_error
from byoc.errors import ByocError
from byoc.operations.query import explain
from byoc.operations.ssm import NodeRun, QueryResult, node_instances, run_script, run_sql, secret_arn_of
from byoc.state.model import State
from byoc.userdata import tool_command

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
#: what ``byoc-proton-password --status`` may print
HOLDS = frozenset({CURRENT, PREVIOUS, "other", "none"})
#: exit codes of the node-side script
REFUSED, NO_ANSWER, NO_SECRET = 3, 4, 5
#: the node-side script waits up to 60 s for the new password to log in
APPLY_TIMEOUT = 120
HEALTH_TIMEOUT = 300.0
DEFAULT_PASSWORD_LENGTH = 32

Progress = Callable[[str, str], None]  # (node, what happened)


@dataclass(frozen=True)
class RotationPlan:
    """What a rotation will do: which nodes hold which version, and whether it resumes."""

    cluster: str
    secret_arn: str
    nodes: dict[str, str]  # key → instance id, in node order
    holds: dict[str, str]  # key → AWSCURRENT, AWSPREVIOUS, other or none
    #: the rotation function's ARN when Secrets Manager rotates the secret on a schedule
    #: (security.password_rotation): then Secrets Manager starts a rotation and the function rolls it
    function: str | None = None

    @property
    def resume(self) -> bool:
        """Some node does not hold AWSCURRENT: an earlier rotation stopped half-way."""
        return any(h != CURRENT for h in self.holds.values())

    @property
    def to_move(self) -> list[str]:
        if not self.resume:
            return list(self.nodes)
        return [n for n in self.nodes if self.holds[n] != CURRENT]

    def describe(self) -> str:
        if self.function:
            return (f"The admin password of cluster {self.cluster} is rotated by Secrets Manager on a "
                    "schedule: it starts a rotation now, and its rotation function puts the new password on "
                    f"the nodes ({', '.join(self.nodes)}), one at a time, then makes it AWSCURRENT.")
        if not self.resume:
            return (f"A new admin password for cluster {self.cluster} goes into its secret (the old one "
                    f"stays as AWSPREVIOUS), then to nodes {', '.join(self.nodes)}, one at a time.")
        done = [n for n in self.nodes if self.holds[n] == CURRENT]
        return (f"Resuming an unfinished rotation of cluster {self.cluster}: nodes {', '.join(self.to_move)} "
                "still use an older password and get the one already in the secret (AWSCURRENT); "
                + (f"nodes {', '.join(done)} already have it; " if done else "")
                + "no new password is generated.")

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "resume": self.resume, "holds": dict(self.holds),
                "to_move": self.to_move, "scheduled_rotation_function": self.function}


@dataclass
class RotationResult:
    cluster: str
    version_id: str
    new_value: bool  # False when it resumed
    moved: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    untouched: list[str] = field(default_factory=list)
    #: Secrets Manager started the rotation (scheduled rotation): its function rolls it on its own
    started: bool = False

    @property
    def ok(self) -> bool:
        return self.failed is None

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "ok": self.ok, "version_id": self.version_id,
                "new_value": self.new_value, "moved": self.moved, "already": self.already,
                "failed": self.failed, "error": self.error, "untouched": self.untouched,
                "started_by_secrets_manager": self.started}


class RotationError(ByocError):
    """The roll stopped at a node; ``result`` says where it stands."""

    def __init__(self, message: str, result: RotationResult) -> None:
        super().__init__(message)
        self.result = result


def plan_rotation(ctx: AwsContext, state: State | None) -> RotationPlan:
    """Ask every node which version of the secret it holds. A node that cannot answer stops it
    here, before anything changes: byoc cannot tell whether it needs the old value."""
    nodes = node_instances(state)
    arn = secret_arn_of(state)
    function = _scheduled(ctx, arn)
    if function is not None:  # one mechanism: Secrets Manager's rotation, started now
        return RotationPlan(ctx.cluster, arn, nodes, {}, function)
    runs = run_script(ctx, nodes, tool_command(arn, ctx.region, "--status"),
                      comment=f"byoc {ctx.cluster}: password status", timeout=60)
    holds: dict[str, str] = {}
    problems = []
    for node, run in runs.items():
        said = (run.stdout.strip().splitlines() or [""])[-1].strip()
        if run.ok and said in HOLDS:
            holds[node] = said
        else:
            problems.append(run.describe() if not run.ok else
                            f"node {node} ({run.instance_id}): unexpected answer {said[:60]!r}")
    if problems:
        raise ByocError(
            "cannot tell which admin password every node uses, so nothing was changed: "
            + "; ".join(problems)
            + ". Bring the node back (`byoc health` shows its state; its SSM agent must be online), "
            "then run `byoc rotate-password` again."
        )
    return RotationPlan(ctx.cluster, arn, nodes, holds)


def rotate_password(
    ctx: AwsContext,
    state: State | None,
    plan: RotationPlan,
    *,
    progress: Progress | None = None,
    health_timeout: float = HEALTH_TIMEOUT,
) -> RotationResult:
    """Carry out ``plan``; raises RotationError at the first node that fails (see the module)."""
    say = progress or (lambda node, what: None)
    if plan.function:
        return _start_rotation(ctx, plan, say)
    if plan.resume:
        version = _current_version(ctx, plan.secret_arn)
        new_value = False
    else:
        version = _put_new_value(ctx, plan.secret_arn, _password_length(state))
        new_value = True
        say("", "a new password is in the secret (AWSCURRENT); the previous one is AWSPREVIOUS")
    result = RotationResult(ctx.cluster, version, new_value,
                            already=[n for n in plan.nodes if n not in plan.to_move])
    todo = plan.to_move
    for i, node in enumerate(todo):
        target = {node: plan.nodes[node]}
        say(node, "applying the new password")
        run = run_script(ctx, target, tool_command(plan.secret_arn, ctx.region, "--version-id", version),
                         comment=f"byoc {ctx.cluster}: rotate password", timeout=APPLY_TIMEOUT)[node]
        why = None if run.ok else _tool_failure(run)
        if why is None:
            answer = run_sql(ctx, target, plan.secret_arn, "SELECT 1", max_seconds=30)[node]
            if not isinstance(answer, QueryResult):
                why = f"it took the new password but does not answer with it: {explain(answer)}"
        if why is None:
            why = _wait_healthy(ctx, state, node, plan.nodes[node], health_timeout)
        if why is not None:
            result.failed, result.error, result.untouched = node, why, todo[i + 1:]
            raise RotationError(_stopped(plan, result), result)
        result.moved.append(node)
        say(node, "uses the new password and is healthy")
    return result


def _scheduled(ctx: AwsContext, arn: str) -> str | None:
    """The rotation function's ARN when Secrets Manager rotates the secret; refuses while a rotation
    is under way (an AWSPENDING version that is not AWSCURRENT): the two must never fight."""
    try:
        described = ctx.client("secretsmanager").describe_secret(SecretId=arn)
    except Exception as exc:
        raise to_cloud_error(exc, None, arn) from exc
    if not (described.get("RotationEnabled") and described.get("RotationLambdaARN")):
        return None
    pending = [v for v, stages in (described.get("VersionIdsToStages") or {}).items()
               if PENDING in stages and CURRENT not in stages]
    if pending:
        raise ByocError(_in_progress(ctx, arn, str(described["RotationLambdaARN"]), pending[0]))
    return str(described["RotationLambdaARN"])


def _in_progress(ctx: AwsContext, arn: str, function: str, version: str) -> str:
    name = function.rsplit(":", 1)[1]
    return (f"a rotation of the admin password is in progress (version {version} is AWSPENDING): Secrets "
            f"Manager's rotation function {name} is rolling it node by node, or retries it after a failure. "
            f"Nothing was changed. Its log is in CloudWatch Logs, group /aws/lambda/{name} (`aws logs tail "
            f"/aws/lambda/{name} --region {ctx.region}`); run `byoc rotate-password` again once it is done")


def _start_rotation(ctx: AwsContext, plan: RotationPlan, say: Progress) -> RotationResult:
    """RotateSecret (RotateImmediately): Secrets Manager runs the function's four steps now."""
    try:
        out = ctx.client("secretsmanager").rotate_secret(SecretId=plan.secret_arn, RotateImmediately=True)
    except Exception as exc:
        if error_code(exc) == "InvalidRequestException" and "previous rotation" in str(exc).lower():
            raise ByocError(_in_progress(ctx, plan.secret_arn, plan.function or "", "(pending)")) from None
        raise to_cloud_error(exc, None, plan.secret_arn) from exc
    say("", "Secrets Manager started the rotation; its function puts the new password on the nodes")
    return RotationResult(ctx.cluster, str(out.get("VersionId") or ""), True, started=True,
                          untouched=list(plan.nodes))


def _tool_failure(run: NodeRun) -> str:
    if not run.reachable:
        return run.describe() + "; it still uses the previous password"
    words = (run.stderr.strip() or run.stdout.strip()).splitlines()[-3:]
    told = " / ".join(w.replace("byoc-proton-password: ", "") for w in words) or run.status
    if run.exit_code in (REFUSED, NO_ANSWER):
        return f"node {run.node} ({run.instance_id}): {told}; its previous users override was put back"
    if run.exit_code == NO_SECRET:
        return (f"node {run.node} ({run.instance_id}): {told} (the node's role must be allowed "
                "secretsmanager:GetSecretValue on the secret); its override was not touched")
    return f"node {run.node} ({run.instance_id}): {run.status}: {told}"


def _stopped(plan: RotationPlan, r: RotationResult) -> str:
    parts = [f"password rotation stopped at node {r.failed}: {r.error}."]
    if r.moved or r.already:
        parts.append(f"Nodes {', '.join(r.already + r.moved)} use the new password (AWSCURRENT).")
    if r.untouched:
        parts.append(f"Nodes {', '.join(r.untouched)} were not touched.")
    parts.append(
        "Until every node has moved, clients of the other nodes need the previous password "
        "(the secret's AWSPREVIOUS version); the secret keeps both. Fix the cause and run "
        "`byoc rotate-password` again: it resumes with the same new password."
    )
    return " ".join(parts)


def _current_version(ctx: AwsContext, arn: str) -> str:
    try:
        described = ctx.client("secretsmanager").describe_secret(SecretId=arn)
    except Exception as exc:
        raise to_cloud_error(exc, None, arn) from exc
    for vid, stages in (described.get("VersionIdsToStages") or {}).items():
        if CURRENT in stages:
            return str(vid)
    raise ByocError(f"the secret {arn} has no AWSCURRENT version; run `byoc apply` to repair the cluster")


def _put_new_value(ctx: AwsContext, arn: str, length: int) -> str:
    """GetRandomPassword + PutSecretValue; the new version id. The value is in no error."""
    sm = ctx.client("secretsmanager")
    try:
        password = sm.get_random_password(PasswordLength=length, ExcludePunctuation=True)["RandomPassword"]
    except Exception as exc:
        raise to_cloud_error(exc, None, arn) from exc
    token = str(uuid.uuid4())
    try:
        out = sm.put_secret_value(SecretId=arn, SecretString=password, ClientRequestToken=token)
    except Exception as exc:
        code = error_code(exc) or type(exc).__name__
        del password
        raise ByocError(f"cannot put the new password into {arn} ({code}); nothing was changed on the "
                        "nodes: check that you may secretsmanager:PutSecretValue, then run again") from None
    del password
    return str(out["VersionId"])


def _password_length(state: State | None) -> int:
    for r in (state.resources.values() if state else ()):
        if r.kind == "aws_secretsmanager_secret":
            try:
                return int(r.props.get("password_length") or DEFAULT_PASSWORD_LENGTH)
            except (TypeError, ValueError):
                break
    return DEFAULT_PASSWORD_LENGTH


def _wait_healthy(ctx: AwsContext, state: State | None, node: str, iid: str, timeout: float) -> str | None:
    """None once the node is healthy in every target group it is registered in; else why not."""
    from byoc.operations.health import check_health

    deadline = time.monotonic() + timeout
    delay = 5.0
    while True:
        report = check_health(ctx, state)
        mine = next((n for n in report.nodes if n.key == node), None)
        bad = {tg: v for tg, v in (mine.targets.items() if mine else ()) if v != "healthy"}
        if mine is not None and not bad and mine.state == "running":
            return None
        if time.monotonic() >= deadline:
            what = "; ".join(f"{tg}: {v}" for tg, v in sorted(bad.items())) or (
                f"instance {iid} is {mine.state if mine else 'missing'}")
            return (f"node {node} ({iid}) took the new password but is not healthy after "
                    f"{int(timeout)} s ({what})")
        ctx.sleep(delay)
