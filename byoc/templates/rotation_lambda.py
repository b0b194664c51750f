"""The rotation function of a byoc cluster's Proton admin password: Secrets Manager's four steps.

Runs in AWS Lambda (python3.12), zipped by byoc (byoc/blueprint/rotation.py) with ``apply.sh``, the
command ``byoc rotate-password`` sends to a node (the node-side ``byoc-proton-password`` script, whole,
so nodes booted by an older byoc work too). It imports boto3 only, never byoc.

- createSecret: a new value (GetRandomPassword, no punctuation, as byoc makes it) as AWSPENDING under
  the rotation's token, unless that version exists already (a retry).
- setSecret: node by node (running instances tagged ``byoc:cluster``, in node order) through SSM
  (AWS-RunShellScript): the node-side script writes the pending value into the users.d override and
  checks that it logs in (else puts the previous override back), then the node must answer
  ``SELECT 1`` with it before the next node goes. At the first node that fails, every node already
  moved is put back on the AWSCURRENT version and the step raises: Secrets Manager keeps AWSPENDING
  and retries, and AWSCURRENT never moves to a value the nodes do not all hold. A node that already
  holds the value says "unchanged" (a retry is idempotent).
- testSecret: every node answers ``SELECT 1`` with the pending value.
- finishSecret: AWSCURRENT moves to the token's version (AWSPREVIOUS to the old one).

The password never appears in a log line, an error or an SSM command: the nodes read it from Secrets
Manager by version id with their own role.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
CLUSTER_TAG, ADDRESS_TAG = "byoc:cluster", "byoc:address"
NODE_PREFIX = 'aws_instance.node["'
PASSWORD_LENGTH = 32
#: what apply.sh holds in place of the secret's ARN and the version id (byoc/blueprint/rotation.py)
ARN_PLACEHOLDER = "arn:aws:secretsmanager:us-east-1:000000000000:secret:byoc-rotation-placeholder"
VERSION_PLACEHOLDER = "BYOC_VERSION_ID"
#: seconds one node's command may take (the node-side script waits up to 60 s for Proton)
COMMAND_TIMEOUT = 180
POLL_SECONDS = 3.0
_ARN = re.compile(r"arn:aws(-[a-z]{1,10}){0,2}:secretsmanager:[a-z0-9-]{1,30}:[0-9]{12}:secret:"
                  r"[A-Za-z0-9/_+=.@-]{1,256}")
_TOKEN = re.compile(r"[A-Za-z0-9-]{1,64}")
_DONE = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"})

log = logging.getLogger("byoc-rotation")
log.setLevel(logging.INFO)


class RotationFailed(Exception):
    """The step cannot finish; Secrets Manager keeps AWSPENDING and retries the rotation."""


@dataclass(frozen=True)
class NodeAnswer:
    ok: bool
    status: str
    exit_code: int
    output: str


def check_script(arn: str, token: str) -> str:
    """The command that logs in on the node with the secret's version ``token`` and runs SELECT 1
    (the node reads the value itself; only ``1`` or Proton's error comes back)."""
    region = arn.split(":")[3]
    return "\n".join([
        "#!/bin/bash",
        "set -euo pipefail",
        f"s=$(AWS_PAGER='' aws secretsmanager get-secret-value --secret-id '{arn}' --version-id '{token}' "
        f"--region '{region}' --query SecretString --output text)",
        's=${s//\\\\/\\\\\\\\}',
        's=${s//\\"/\\\\\\"}',
        "printf 'user = \"default:%s\"\\n' \"$s\" | curl -sS -K - --max-time 10 --data-binary 'SELECT 1' "
        "http://127.0.0.1:8123/",
    ]) + "\n"


class Rotation:
    """One cluster's rotation over the given clients (boto3's in Lambda; moto's in byoc's tests)."""

    def __init__(self, sm: Any, ssm: Any, ec2: Any, apply_template: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.sm, self.ssm, self.ec2 = sm, ssm, ec2
        self.apply_template = apply_template
        self.sleep = sleep

    # -- the four steps ------------------------------------------------------------------------
    def run(self, step: str, arn: str, token: str) -> None:
        if not _ARN.fullmatch(arn):
            raise RotationFailed(f"SecretId must be the secret's ARN, got {arn[:300]!r}")
        if not _TOKEN.fullmatch(token):
            raise RotationFailed("ClientRequestToken has characters a version id never has")
        meta = self.sm.describe_secret(SecretId=arn)
        if not meta.get("RotationEnabled"):
            raise RotationFailed(f"secret {arn} is not enabled for rotation")
        stages = meta.get("VersionIdsToStages") or {}
        if token not in stages:
            raise RotationFailed(f"secret {arn} has no version {token} to rotate to")
        if CURRENT in stages[token]:
            log.info("version %s is already AWSCURRENT: nothing to do", token)
            return
        if PENDING not in stages[token]:
            raise RotationFailed(f"version {token} of secret {arn} is not AWSPENDING")
        steps = {"createSecret": self.create, "setSecret": self.set, "testSecret": self.test,
                 "finishSecret": self.finish}
        if step not in steps:
            raise RotationFailed(f"unknown rotation step {step!r}")
        steps[step](meta, arn, token)

    def create(self, meta: dict[str, Any], arn: str, token: str) -> None:
        self.sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)  # it must have a current value
        if self.has_value(arn, token):
            log.info("createSecret: version %s exists already", token)
            return
        password = self.sm.get_random_password(PasswordLength=PASSWORD_LENGTH,
                                               ExcludePunctuation=True)["RandomPassword"]
        try:
            self.sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=password,
                                     VersionStages=[PENDING])
        finally:
            del password
        log.info("createSecret: a new value is AWSPENDING as version %s", token)

    def set(self, meta: dict[str, Any], arn: str, token: str) -> None:
        nodes = self.nodes(_cluster(meta))
        current = _current(meta)
        moved: list[tuple[str, str]] = []
        for key, iid in nodes:
            applied = self.command(iid, self.apply_command(arn, token), f"apply password version {token}")
            why = None if applied.ok else f"it refused the new password ({_tail(applied)})"
            if why is None:
                checked = self.command(iid, check_script(arn, token), "SELECT 1 with the new password")
                if not (checked.ok and checked.output.strip().endswith("1")):
                    why = f"it does not answer SELECT 1 with the new password ({_tail(checked)})"
                    moved.append((key, iid))  # it took the value: put it back too
            if why is not None:
                back = self.roll_back(arn, current, moved)
                raise RotationFailed(
                    f"setSecret stopped at node {key} ({iid}): {why}. "
                    + (f"Nodes {', '.join(back)} were put back on the AWSCURRENT password. " if back else "")
                    + "AWSCURRENT is unchanged; Secrets Manager retries this rotation.")
            moved.append((key, iid))
            log.info("setSecret: node %s (%s) uses version %s", key, iid, token)

    def roll_back(self, arn: str, current: str, moved: list[tuple[str, str]]) -> list[str]:
        back = []
        for key, iid in moved:
            answer = self.command(iid, self.apply_command(arn, current), f"put back version {current}")
            if answer.ok:
                back.append(key)
            else:
                log.error("node %s (%s) could not be put back on AWSCURRENT: %s", key, iid, _tail(answer))
        return back

    def test(self, meta: dict[str, Any], arn: str, token: str) -> None:
        if not self.has_value(arn, token):
            # RotateSecret with RotateImmediately false runs testSecret alone, to check that the function
            # can be invoked: a pending version without a value has nothing to test on the nodes
            log.info("testSecret: version %s has no value yet: nothing to test on the nodes", token)
            return
        bad = []
        for key, iid in self.nodes(_cluster(meta)):
            checked = self.command(iid, check_script(arn, token), "SELECT 1 with the pending password")
            if not (checked.ok and checked.output.strip().endswith("1")):
                bad.append(f"node {key} ({iid}): {_tail(checked)}")
        if bad:
            raise RotationFailed("testSecret: the pending password does not log in on " + "; ".join(bad))
        log.info("testSecret: every node answers with version %s", token)

    def finish(self, meta: dict[str, Any], arn: str, token: str) -> None:
        current = _current(meta)
        if current == token:
            return
        self.sm.update_secret_version_stage(SecretId=arn, VersionStage=CURRENT, MoveToVersionId=token,
                                            RemoveFromVersionId=current)
        log.info("finishSecret: version %s is AWSCURRENT (was %s)", token, current)

    def has_value(self, arn: str, token: str) -> bool:
        try:
            self.sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage=PENDING)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True

    # -- the nodes -----------------------------------------------------------------------------
    def nodes(self, cluster: str) -> list[tuple[str, str]]:
        """The cluster's running nodes, (key, instance id) in node order. Stopped nodes read
        AWSCURRENT when they boot, so they need nothing now."""
        found: dict[str, str] = {}
        pages = self.ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ])
        for page in pages:
            for reservation in page.get("Reservations", ()):
                for inst in reservation.get("Instances", ()):
                    tags = {t["Key"]: t["Value"] for t in inst.get("Tags") or ()}
                    address = tags.get(ADDRESS_TAG, "")
                    if tags.get(CLUSTER_TAG) == cluster and address.startswith(NODE_PREFIX):
                        found[address[len(NODE_PREFIX):-2]] = inst["InstanceId"]
        if not found:
            raise RotationFailed(f"cluster {cluster} has no running node to rotate")
        return [(k, found[k]) for k in sorted(found, key=lambda k: (len(k), k))]

    def apply_command(self, arn: str, version: str) -> str:
        if not (_ARN.fullmatch(arn) and _TOKEN.fullmatch(version)):
            raise RotationFailed("refusing to build a node command from an unexpected ARN or version id")
        return self.apply_template.replace(ARN_PLACEHOLDER, arn).replace(VERSION_PLACEHOLDER, version)

    def command(self, iid: str, script: str, what: str) -> NodeAnswer:
        """Run ``script`` on one node through SSM and wait for its end."""
        try:
            sent = self.ssm.send_command(
                InstanceIds=[iid], DocumentName="AWS-RunShellScript", TimeoutSeconds=COMMAND_TIMEOUT,
                Comment=f"byoc rotation: {what}"[:100], Parameters={"commands": [script]})
        except ClientError as exc:
            return NodeAnswer(False, exc.response.get("Error", {}).get("Code", "SendCommand failed"), -1, "")
        command_id = sent["Command"]["CommandId"]
        deadline = time.monotonic() + COMMAND_TIMEOUT + 60
        while True:
            try:
                got = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=iid)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvocationDoesNotExist":
                    raise
                got = {"Status": "Pending"}
            status = str(got.get("Status", ""))
            if status in _DONE:
                out = str(got.get("StandardOutputContent") or "")
                err = str(got.get("StandardErrorContent") or "")
                code = int(got.get("ResponseCode", -1))
                return NodeAnswer(status == "Success" and code == 0, status, code, (out + "\n" + err).strip())
            if time.monotonic() > deadline:
                return NodeAnswer(False, "no answer in time", -1, "")
            self.sleep(POLL_SECONDS)


def _cluster(meta: dict[str, Any]) -> str:
    tags = {t["Key"]: t["Value"] for t in meta.get("Tags") or ()}
    if not tags.get(CLUSTER_TAG):
        raise RotationFailed(f"secret {meta.get('ARN')} has no {CLUSTER_TAG} tag: not a byoc cluster's")
    return str(tags[CLUSTER_TAG])


def _current(meta: dict[str, Any]) -> str:
    for version, stages in (meta.get("VersionIdsToStages") or {}).items():
        if CURRENT in stages:
            return str(version)
    raise RotationFailed(f"secret {meta.get('ARN')} has no AWSCURRENT version")


def _tail(answer: NodeAnswer) -> str:
    lines = [line.replace("byoc-proton-password: ", "")
             for line in answer.output.splitlines() if line.strip()]
    told = " / ".join(lines[-3:])[:400]
    return f"{answer.status}, exit {answer.exit_code}" + (f": {told}" if told else "")


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    """Secrets Manager's entry point: ``{"Step", "SecretId", "ClientRequestToken"}``."""
    template = (Path(__file__).parent / "apply.sh").read_text("utf-8")
    rotation = Rotation(boto3.client("secretsmanager"), boto3.client("ssm"), boto3.client("ec2"), template)
    log.info("%s", json.dumps({"step": event.get("Step"), "secret": event.get("SecretId"),
                               "token": event.get("ClientRequestToken")}))
    rotation.run(str(event["Step"]), str(event["SecretId"]), str(event["ClientRequestToken"]))
