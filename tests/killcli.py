"""Run the real CLI against a moto server and SIGKILL it (or interrupt it: SIGINT, SIGTERM, once or
twice) after its k-th AWS call, and count what a cluster owns in that server by byoc's tags (for the
crash, signal and contention tests)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.motoserver import MotoServer

#: one line per completed AWS call on stderr with ``byoc -v`` (logger byoc.aws)
CALL_LINE = re.compile(r" aws \S+ \S+ (\d+\.\d+s )?\S*$")


#: what byoc prints on stderr when its signal handler has taken the first interrupt
FIRST_INTERRUPT = "Gracefully shutting down..."


def run_until(
    args: list[str], env: dict[str, str], cwd: Path, k: int | None,
    sig: signal.Signals = signal.SIGKILL, times: int = 1,
) -> tuple[int, int, str]:
    """``byoc -v ARGS``; send ``sig`` after the ``k``-th AWS call (never, if None). SIGKILL ends the
    run there; another signal lets it go on to its end (a second one, with ``times=2``, is sent once
    the first was taken, or right away when byoc is not yet or no longer handling signals).

    Returns (exit code, or -9 when killed; calls seen; stderr — all of it unless killed)."""
    p = subprocess.Popen([sys.executable, "-m", "byoc", "-v", *args], env=env, cwd=cwd,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    assert p.stderr is not None
    calls, lines, sent = 0, [], 0
    for line in p.stderr:
        lines.append(line)
        if sent and sent < times and FIRST_INTERRUPT in line:
            _send(p, sig)
            sent += 1
        if CALL_LINE.search(line.rstrip("\n")):
            calls += 1
            if k is not None and calls == k:
                _send(p, sig)
                sent += 1
                if sig == signal.SIGKILL:
                    break
    p.stderr.close()
    code = p.wait(timeout=300)
    return code, calls, "".join(lines)


def _send(p: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(p.pid, sig)


def untracked(server: MotoServer, cluster: str, state: dict[str, Any] | None) -> set[str]:
    """Addresses of resources tagged for ``cluster`` in AWS that the state does not record."""
    known = {r["address"] for r in (state or {}).get("resources", ())}
    return set(owned(server, cluster)) - known


def owned(server: MotoServer, cluster: str) -> collections.Counter[str]:
    """How many live AWS resources carry each ``byoc:address`` tag of ``cluster``: every kind whose
    create makes a new id each time (so a repeated create would show as a count of 2)."""
    found: collections.Counter[str] = collections.Counter()
    ec2 = server.client("ec2")
    mine = [{"Name": "tag:byoc:cluster", "Values": [cluster]}]

    def add(tags: Any) -> None:
        t = {x["Key"]: x["Value"] for x in tags or ()}
        if t.get("byoc:cluster") == cluster and "byoc:address" in t:
            found[t["byoc:address"]] += 1

    for r in ec2.describe_vpcs(Filters=mine)["Vpcs"]:
        add(r.get("Tags"))
    for r in ec2.describe_subnets(Filters=mine)["Subnets"]:
        add(r.get("Tags"))
    for r in ec2.describe_internet_gateways(Filters=mine)["InternetGateways"]:
        add(r.get("Tags"))
    for r in ec2.describe_addresses(Filters=mine)["Addresses"]:
        add(r.get("Tags"))
    for r in ec2.describe_nat_gateways()["NatGateways"]:
        if r["State"] not in {"deleted", "deleting"}:
            add(r.get("Tags"))
    for r in ec2.describe_route_tables(Filters=mine)["RouteTables"]:
        add(r.get("Tags"))
    for r in ec2.describe_security_groups(Filters=mine)["SecurityGroups"]:
        add(r.get("Tags"))
    for res in ec2.describe_instances(Filters=mine)["Reservations"]:
        for r in res["Instances"]:
            if r["State"]["Name"] not in {"terminated", "shutting-down"}:
                add(r.get("Tags"))
    for r in ec2.describe_volumes(Filters=mine)["Volumes"]:
        add(r.get("Tags"))
    for r in ec2.describe_flow_logs(Filters=mine)["FlowLogs"]:
        add(r.get("Tags"))
    elb = server.client("elbv2")
    arns = [lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]]
    arns += [tg["TargetGroupArn"] for tg in elb.describe_target_groups()["TargetGroups"]]
    if arns:
        for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]:
            add(d["Tags"])
    iam = server.client("iam")
    for role in iam.list_roles()["Roles"]:
        add(iam.list_role_tags(RoleName=role["RoleName"])["Tags"])
    for ip in iam.list_instance_profiles()["InstanceProfiles"]:
        add(ip.get("Tags"))
    sm = server.client("secretsmanager")
    for s in sm.list_secrets()["SecretList"]:
        add(s.get("Tags"))
    kms = server.client("kms")
    for key in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if meta["KeyState"] == "Enabled" and meta.get("KeyManager") == "CUSTOMER":
            add([{"Key": t["TagKey"], "Value": t["TagValue"]}
                 for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]])
    logs = server.client("logs")
    for g in logs.describe_log_groups()["logGroups"]:
        add([{"Key": k, "Value": v}
             for k, v in logs.list_tags_for_resource(resourceArn=g["arn"].rstrip(":*"))["tags"].items()])
    s3 = server.client("s3")
    for b in s3.list_buckets()["Buckets"]:
        with contextlib.suppress(s3.exceptions.ClientError):
            add(s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"])
    return found


def state_file_ok(path: Path) -> dict[str, Any] | None:
    """The state document at ``path`` (None if absent); asserts it is valid JSON of format 1."""
    from byoc.state import STATE_VERSION, State

    if not path.exists():
        return None
    data = json.loads(path.read_text())
    assert data["version"] == STATE_VERSION
    State.from_dict(data)
    return data  # type: ignore[no-any-return]
