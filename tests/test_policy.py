"""Policy tools in both directions on byoc's plan JSON: checkov (.venv-checkov) and terraform-compliance
(.venv-compliance, features in tests/policy/) pass the shipped specs and fail insecure variants of
specs/prod.yaml.

The insecure variants the spec can express are made with ``--set`` (encryption off, a public load
balancer open to 0.0.0.0/0). What the spec cannot express — byoc never opens SSH to /0, never lets
the internet reach the nodes' Proton ports, never leaves the bucket's default encryption off or its
public access open — is made by editing the planned props of the plan (test-only plans), so that
the tools are shown to catch it if it ever happened. One checkov run reads every plan (``-d``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from byoc.plan import Plan
from byoc.render import render_plan_json
from byoc.resources import shaper
from tests.test_checkov import CHECKOV, skip_list
from tests.test_golden import ROOT, World

COMPLIANCE = ROOT / ".venv-compliance/bin/terraform-compliance"
FEATURES = ROOT / "tests/policy"
PROTON_PORTS = (8123, 8463, 3218, 9363)

Props = dict[str, Any]
#: a code signing config of the user's (the rotation function's zip is unsigned: its policy only warns)
SIGNING = "arn:aws:lambda:us-west-2:123456789012:code-signing-config:csc-0123456789abcdef0"
#: encryption at rest off (prod creates a key of its own: that goes too)
OFF = ("security.encryption.enabled=false", "security.encryption.create_kms_key=false")


def edited(plan: Plan, address: str, edit: Callable[[Props], Props]) -> Plan:
    """``plan`` with the planned props of ``address`` changed by ``edit`` (a test-only plan)."""
    return dataclasses.replace(plan, changes=tuple(
        dataclasses.replace(c, after=edit(dict(c.after or {})), desired=edit(dict(c.desired or {})))
        if c.address == address else c for c in plan.changes))


def world_rule(port: int, protocol: str = "tcp") -> Props:
    return {"protocol": protocol, "from_port": port, "to_port": port, "cidr_block": "0.0.0.0/0",
            "description": f"port {port} from anywhere"}


def open_ingress(*rules: Props) -> Callable[[Props], Props]:
    return lambda p: {**p, "ingress": [*p["ingress"], *rules]}


def no_default_encryption(p: Props) -> Props:
    return {k: v for k, v in p.items()
            if k not in ("sse_algorithm", "kms_master_key_id", "bucket_key_enabled")}


def public_bucket(p: Props) -> Props:
    return {**p, "public_access_block": {k: False for k in p["public_access_block"]}}


def plans() -> dict[str, Plan]:
    prod = "specs/prod.yaml"
    w = World()
    return {
        "prod": w.plan(prod),
        "dev": w.plan("specs/dev.yaml"),
        # spec: an internet-facing load balancer open to the whole internet on Proton's ports
        "public-lb": w.plan(prod, ("network.public_access=true", "network.allowed_cidrs=[0.0.0.0/0]")),
        # spec: encryption at rest off (EBS); edited: no default bucket encryption (byoc always sets it)
        "unencrypted": edited(w.plan(prod, OFF), "aws_s3_bucket.data", no_default_encryption),
        # spec: the user's choice of AWS-managed keys (no key of the cluster's own)
        "aws-managed-keys": w.plan(prod, ("security.encryption.create_kms_key=false",)),
        # edited: SSH to the nodes from anywhere (byoc never opens 22 to a /0)
        "open-ssh": edited(w.plan(prod), "aws_security_group.node", open_ingress(world_rule(22))),
        # edited: the nodes' Proton ports and then all traffic from anywhere
        "open-proton": edited(w.plan(prod), "aws_security_group.node", open_ingress(
            *(world_rule(p) for p in PROTON_PORTS), {**world_rule(0, "-1"), "to_port": 0})),
        # edited: the bucket's public access block off
        "public-bucket": edited(w.plan(prod), "aws_s3_bucket.data", public_bucket),
        # spec: no scheduled rotation of the admin password (byoc rotate-password only)
        "rotation-off": w.plan(prod, ("security.password_rotation.enabled=false",)),
        # spec: a code signing config for the rotation function
        "code-signing": w.plan(prod, (f"security.password_rotation.code_signing_config_arn={SIGNING}",)),
    }


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("plans")
    for name, plan in plans().items():
        (d / f"{name}.json").write_text(render_plan_json(plan, shaper()))
    return d


# -- checkov ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_failed(plan_dir: Path) -> dict[str, dict[str, set[str]]]:
    """checkov's failed checks per plan file: plan name → check id → resources."""
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed: run `make checkov-venv` (a separate virtualenv .venv-checkov)")
    run = subprocess.run([str(CHECKOV), "-d", str(plan_dir), "--framework", "terraform_plan",
                          "--skip-download", "-o", "json", "--quiet"],
                         capture_output=True, text=True, timeout=600, cwd=plan_dir)
    report = json.loads(run.stdout)
    assert report["summary"]["resource_count"] > 300  # it read all eight plans
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for c in report["results"]["failed_checks"]:
        out[Path(c["file_path"]).stem][c["check_id"]].add(c["resource"])
    return out


#: what specs/dev.yaml chooses on top of prod's choices: no detailed monitoring (compute.
#: detailed_monitoring off), a week of logs (monitoring.log_retention_days: 7) and AWS-managed keys
#: (no security.encryption.create_kms_key), and no scheduled password rotation (security.password_rotation
#: off by default: no rotation function in a small cluster)
DEV_CHOICES = {"CKV_AWS_126", "CKV_AWS_338", "CKV_AWS_149", "CKV_AWS_158", "CKV_AWS_189", "CKV2_AWS_57"}


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_checkov_passes_the_shipped_specs(checkov_failed: dict[str, dict[str, set[str]]], name: str) -> None:
    allowed = skip_list() | (DEV_CHOICES if name == "dev" else set())
    unexplained = {k: v for k, v in checkov_failed[name].items() if k not in allowed}
    assert unexplained == {}
    if name == "dev":  # and exactly those choices, nothing else
        assert set(checkov_failed[name]) >= DEV_CHOICES


#: what choosing AWS-managed keys (no create_kms_key) shows: the secret, the data volumes and the log
#: groups without a key of the cluster's own (and the data bucket's SSE-S3, CKV_AWS_145, skipped anyway)
AWS_MANAGED_KEYS = {"CKV_AWS_149": {"aws_secretsmanager_secret.admin"},
                    "CKV_AWS_189": {f'aws_ebs_volume.data["{i}"]' for i in range(3)},
                    "CKV_AWS_158": {"aws_cloudwatch_log_group.main", "aws_cloudwatch_log_group.flow_logs",
                                    "aws_cloudwatch_log_group.rotation"}}


def test_checkov_names_the_aws_managed_keys_choice(checkov_failed: dict[str, dict[str, set[str]]]) -> None:
    failed = checkov_failed["aws-managed-keys"]
    assert {k: v for k, v in failed.items() if k not in skip_list()} == AWS_MANAGED_KEYS
    assert failed["CKV_AWS_145"] == {"aws_s3_bucket.data", "aws_s3_bucket.logs"}
    assert checkov_failed["prod"]["CKV_AWS_145"] == {"aws_s3_bucket.logs"}  # prod's data bucket: its key


@pytest.mark.parametrize(("name", "expected"), [
    ("public-lb", {"CKV2_AWS_28": {"aws_lb.main"}}),  # no checkov check is about Proton's ports
    # CKV_AWS_19 passes a bucket without a default-encryption block (S3 encrypts every new object
    # since 2023); terraform-compliance's feature asks for the block
    ("unencrypted", {"CKV_AWS_3": {f'aws_ebs_volume.data["{i}"]' for i in range(3)},
                     "CKV_AWS_8": {f'aws_instance.node["{i}"]' for i in range(3)},
                     # unencrypted volumes attached to the nodes (checkov follows the attachments)
                     "CKV2_AWS_2": {f'aws_ebs_volume.data["{i}"]' for i in range(3)}, **AWS_MANAGED_KEYS}),
    ("open-ssh", {"CKV_AWS_24": {"aws_security_group.node"}}),
    ("rotation-off", {"CKV2_AWS_57": {"aws_secretsmanager_secret.admin"}}),
    ("open-proton", {check: {"aws_security_group.node"}
                     for check in ("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277")}),
    ("public-bucket", {check: {"aws_s3_bucket_public_access_block.data"}
                       for check in ("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56")}
                      | {"CKV2_AWS_6": {"aws_s3_bucket.data"}}),
])
def test_checkov_fails_the_insecure_variants(checkov_failed: dict[str, dict[str, set[str]]], name: str,
                                             expected: dict[str, set[str]]) -> None:
    failed = checkov_failed[name]
    new = {k: v for k, v in failed.items() if k not in skip_list()}
    assert new == expected


def test_the_password_rotation_passes_ckv2_aws_57_and_code_signing_is_a_spec_choice(
        checkov_failed: dict[str, dict[str, set[str]]]) -> None:
    """Both directions: prod's scheduled rotation passes CKV2_AWS_57 (rotation-off fails it, above);
    the code signing skip (CKV_AWS_272) is prod's choice: with a config it passes."""
    assert "CKV2_AWS_57" not in checkov_failed["prod"]
    assert checkov_failed["prod"]["CKV_AWS_272"] == {"aws_lambda_function.rotation"}
    assert "CKV_AWS_272" not in checkov_failed["code-signing"]
    assert "CKV_AWS_272" not in checkov_failed["rotation-off"]  # no function at all
    lambda_checks = {"CKV_AWS_50", "CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173", "CKV_AWS_363",
                     "CKV_AWS_364"}
    assert not lambda_checks & set(checkov_failed["prod"])


# -- terraform-compliance -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compliance(plan_dir: Path) -> dict[str, tuple[int, str]]:
    """terraform-compliance's exit code and output per plan (the runs side by side)."""
    if not COMPLIANCE.exists():
        pytest.skip("terraform-compliance is not installed: run `make compliance-venv`")
    runs = {p.stem: subprocess.Popen([str(COMPLIANCE), "-p", str(p), "-f", str(FEATURES), "--no-ansi"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     cwd=plan_dir)
            for p in sorted(plan_dir.glob("*.json"))}
    return {name: (proc.wait(timeout=600), proc.communicate()[0]) for name, proc in runs.items()}


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_compliance_passes_the_shipped_specs(compliance: dict[str, tuple[int, str]], name: str) -> None:
    code, output = compliance[name]
    assert code == 0, output[-3000:]
    assert "13 scenarios (13 passed)" in output


@pytest.mark.parametrize(("name", "failed", "messages"), [
    ("public-lb", 2, ["tcp/8123 port is defined within 0.0.0.0/0 network in aws_security_group.lb",
                      "tcp/3218 port is defined within 0.0.0.0/0 network in aws_security_group.lb"]),
    ("unencrypted", 3, ['encrypted property in aws_ebs_volume.data["2"]',
                        'encrypted property in aws_instance.node["0"]',
                        "aws_s3_bucket.data (aws_s3_bucket) does not have "
                        "server_side_encryption_configuration"]),
    ("open-ssh", 1, ["tcp/22 port is defined within 0.0.0.0/0 network in aws_security_group.node"]),
    ("open-proton", 5, [f"tcp/{port} port is defined within 0.0.0.0/0 network in aws_security_group.node"
                        for port in (22, *PROTON_PORTS)]),
    ("public-bucket", 4, [f"{flag} property in aws_s3_bucket_public_access_block.data" for flag in (
        "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")]),
])
def test_compliance_fails_the_insecure_variants(compliance: dict[str, tuple[int, str]], name: str,
                                                failed: int, messages: list[str]) -> None:
    code, output = compliance[name]
    failures = "\n".join(line for line in output.splitlines() if "Failure:" in line)
    assert code != 0, output[-3000:]
    assert f"13 scenarios ({13 - failed} passed, {failed} failed)" in output, output[-3000:]
    assert [m for m in messages if m not in failures] == [], failures
