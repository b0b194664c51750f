"""The sandbox over TLS, end to end with the real CLI: `byoc sandbox start` serves HTTPS with a
certificate it generates (boto3 trusts it through AWS_CA_BUNDLE), and evaluates the cluster bucket's
TLS-only policy as AWS does: backup → backups list → restore → empty plan → prune work over TLS,
while a plain-HTTP request to the same bucket is denied."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, SSLError

from tests.test_cli_e2e import byoc, no_traceback

BUCKET = "dev-proton-data-byoc-example"


def _s3(endpoint: str, verify: Any = None) -> Any:
    return boto3.client("s3", region_name="us-west-2", endpoint_url=endpoint, verify=verify,
                        aws_access_key_id="sandbox", aws_secret_access_key="sandbox")


def test_backup_and_restore_over_tls_while_plain_http_is_denied_by_the_bucket_policy(work: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({"AWS_DEFAULT_REGION": "us-west-2", "NO_COLOR": "1"})
    p = byoc(["sandbox", "start", "--port", "0", "--plain-http-port", "0", "--state-dir", "sbx"], base, work)
    assert p.returncode == 0, p.stdout + p.stderr
    exported = dict(line.removeprefix("export ").split("=", 1) for line in p.stdout.splitlines()
                    if line.startswith("export "))
    (plain,) = [line.split()[-1] for line in p.stdout.splitlines() if line.startswith("# plain HTTP")]
    env = {**base, **exported}
    try:
        endpoint, ca = exported["AWS_ENDPOINT_URL"], exported["AWS_CA_BUNDLE"]
        assert endpoint.startswith("https://127.0.0.1:") and plain.startswith("http://127.0.0.1:")
        assert Path(ca) == (work / "sbx/sandbox-ca.pem").resolve()
        assert stat.S_IMODE((work / "sbx/sandbox-key.pem").stat().st_mode) == 0o600
        with pytest.raises(SSLError):  # real TLS: without the sandbox's certificate it is not trusted
            _s3(endpoint).list_buckets()

        p = byoc(["apply", "specs/dev.yaml", "--auto-approve", "--skip-preflight"], env, work)
        assert p.returncode == 0, p.stdout + p.stderr
        policy = json.loads(_s3(endpoint, ca).get_bucket_policy(Bucket=BUCKET)["Policy"])
        tls_only = [s for s in policy["Statement"] if (s.get("Condition") or {}).get("Bool", {}).get(
            "aws:SecureTransport") in ("false", ["false"])]
        assert tls_only and {s["Effect"] for s in tls_only} == {"Deny"}, policy  # the policy byoc writes

        p = byoc(["backup", "specs/dev.yaml", "--json"], env, work)
        assert p.returncode == 0, p.stdout + p.stderr
        manifest = json.loads(p.stdout)
        backup_id = manifest["backup_id"]
        assert manifest["nodes"]["0"]["consistency"] == "application"  # the sandbox's SSM said Success
        p = byoc(["backups", "list", "specs/dev.yaml"], env, work)
        assert p.returncode == 0 and backup_id in p.stdout and "application" in p.stdout, p.stdout
        p = byoc(["restore", "specs/dev.yaml", backup_id, "--auto-approve"], env, work)
        assert p.returncode == 0 and "-/+" in p.stdout, p.stdout + p.stderr
        p = byoc(["plan", "specs/dev.yaml", "--detailed-exitcode"], env, work)
        assert p.returncode == 0 and "No changes." in p.stdout, p.stdout + p.stderr
        p = byoc(["backups", "prune", "specs/dev.yaml", "--auto-approve"], env, work)
        assert p.returncode == 0 and "Nothing to prune" in p.stdout, p.stdout + p.stderr
        p = byoc(["backup", "specs/dev.yaml", "--crash-consistent"], env, work)
        assert p.returncode == 0 and "complete, crash-consistent" in p.stdout, p.stdout + p.stderr
        p = byoc(["backups", "list", "specs/dev.yaml", "--json"], env, work)
        assert [b["consistency"] for b in json.loads(p.stdout)] == ["application", "crash"], p.stdout

        # the same object over TLS and over plain HTTP: the policy allows one and denies the other
        key = f"backups/{backup_id}/manifest.json"
        assert json.loads(_s3(endpoint, ca).get_object(Bucket=BUCKET, Key=key)["Body"].read())["backup_id"] \
            == backup_id
        for call in (lambda s3: s3.get_object(Bucket=BUCKET, Key=key),
                     lambda s3: s3.put_object(Bucket=BUCKET, Key="backups/x", Body=b"x")):
            with pytest.raises(ClientError) as denied:
                call(_s3(plain))
            # moto answers a denied GetObject with a bare 403, AWS with AccessDenied: both are the denial
            assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        p = byoc(["backup", "specs/dev.yaml"], {**env, "AWS_ENDPOINT_URL": plain}, work)
        assert p.returncode == 1 and "over TLS (aws:SecureTransport)" in p.stderr and plain in p.stderr
        assert "its 1 snapshot(s) were deleted" in p.stderr
        no_traceback(p)
    finally:
        assert byoc(["sandbox", "stop", "--state-dir", "sbx"], base, work).returncode == 0


def test_secure_transport_is_evaluated_per_statement_and_leaves_other_conditions_to_moto() -> None:
    from byoc.sandbox import _without_secure_transport

    plain_only = {"Bool": {"aws:SecureTransport": ["false"]}}
    deny_plain = {"Effect": "Deny", "Action": "s3:*", "Condition": plain_only}
    assert _without_secure_transport(deny_plain, "true") is None  # over TLS it does not apply
    assert _without_secure_transport(deny_plain, "false") == {"Effect": "Deny", "Action": "s3:*"}
    flags = {"AWS:SecureTransport": "true", "aws:MultiFactorAuthPresent": "true"}
    both = {"Effect": "Allow", "Condition": {"Bool": flags, "StringEquals": {"aws:username": "x"}}}
    assert _without_secure_transport(both, "true") == {"Effect": "Allow", "Condition": {
        "Bool": {"aws:MultiFactorAuthPresent": "true"}, "StringEquals": {"aws:username": "x"}}}
    assert _without_secure_transport(both, "false") is None
    other = {"Effect": "Deny", "Condition": {"StringEquals": {"aws:username": "x"}}}
    assert _without_secure_transport(other, "false") is other
