"""`byoc drift`, the state toolbox and targeting through the real CLI against a moto server:
exit codes (0 in sync, 2 drift, 1 error), --json, --quiet, and apply repairing drift."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.motoserver import MotoServer
from tests.test_cli_e2e import byoc, no_traceback

SPEC = "specs/dev.yaml"
LOGS = "aws_cloudwatch_log_group.main"


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    s = MotoServer()
    yield s
    s.stop()


def test_drift_cron_contract_repair_targeting_and_state_tools(aws: MotoServer, work: Path) -> None:
    env = aws.env()
    p = byoc(["apply", SPEC, "--auto-approve", "--skip-preflight"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    p = byoc(["drift", SPEC, "--quiet"], env, work)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")

    aws.client("logs").put_retention_policy(logGroupName="/aws/proton/dev-proton", retentionInDays=30)
    p = byoc(["drift", SPEC], env, work)
    assert p.returncode == 2, p.stderr
    assert f"~ {LOGS} (/aws/proton/dev-proton) was modified:" in p.stdout
    assert "retention_in_days: expected 7, actual 30" in p.stdout
    p = byoc(["drift", SPEC, "--json"], env, work)
    data = json.loads(p.stdout)
    assert p.returncode == 2 and data["in_sync"] is False and data["errors"] == []
    (attr,) = data["clusters"][0]["resources"][0]["attributes"]
    assert attr == {"name": "retention_in_days", "expected": 7, "actual": 30}

    # the plan shows the drift apart from its actions; -target keeps only the log group
    p = byoc(["plan", SPEC, "-target", LOGS], env, work)
    assert "Note: Objects have changed outside of byoc" in p.stdout
    assert "~ retention_in_days = 7 -> 30" in p.stdout and "~ retention_in_days = 30 -> 7" in p.stdout
    assert "resource targeting is in effect" in p.stdout and "Plan: 0 to add, 1 to change" in p.stdout
    p = byoc(["plan", SPEC, "--target", "aws_vpc.nope"], env, work)
    assert p.returncode == 1 and "-target aws_vpc.nope: no resource of this cluster" in p.stderr
    no_traceback(p)
    p = byoc(["apply", SPEC, "--auto-approve", "--skip-preflight", "-target", LOGS], env, work)
    assert p.returncode == 0 and "1 changed" in p.stdout, p.stdout + p.stderr

    # a spec that cannot be read: exit 1 even though the other is in sync; --quiet keeps the error
    p = byoc(["drift", SPEC, "specs/nope.yaml", "--quiet"], env, work)
    assert p.returncode == 1 and p.stdout == "" and "specs/nope.yaml" in p.stderr
    no_traceback(p)

    # the state toolbox
    p = byoc(["state", "list", SPEC], env, work)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and len(lines) == 44 and lines[0].startswith("aws_cloudwatch_dashboard.main\t")
    p = byoc(["state", "show", SPEC, "aws_vpc.main"], env, work)
    assert p.returncode == 0 and "aws_vpc (id vpc-" in p.stdout and 'cidr_block = "10.0.0.0/16"' in p.stdout
    serial = json.loads((work / "state/dev-proton.json").read_text())["serial"]
    p = byoc(["state", "rm", SPEC, LOGS], env, work)
    assert p.returncode == 0 and "it still exists in AWS" in p.stdout
    assert json.loads((work / "state/dev-proton.json").read_text())["serial"] == serial + 1
    assert (work / "state/dev-proton.json.backup").exists()
    p = byoc(["apply", SPEC, "--auto-approve", "--skip-preflight"], env, work)
    assert p.returncode == 0 and f"# {LOGS} (/aws/proton/dev-proton) exists in AWS with byoc's" in p.stdout
    p = byoc(["drift", SPEC], env, work)
    assert p.returncode == 0 and "cluster dev-proton: in sync (44 resources checked)." in p.stdout
