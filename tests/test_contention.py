"""Two runs on one cluster at once, with real processes: the second fails fast naming the first;
a SIGKILLed holder never blocks the next run (local flock); with the S3 backend a whole apply
and destroy go through the conditional writes, and a dead holder's lock is explained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.killcli import CALL_LINE, owned, run_until
from tests.motoserver import MotoServer


def byoc(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "byoc", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_second_apply_fails_fast_and_a_killed_holder_does_not_block(server: MotoServer, work: Path) -> None:
    server.reset()
    env = server.env()
    args = [sys.executable, "-m", "byoc", "-v", "apply", "specs/dev.yaml", "--auto-approve"]
    first = subprocess.Popen(args, env=env, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    try:
        for line in first.stderr:  # wait until it works on AWS: it holds the lock by then
            if CALL_LINE.search(line.rstrip("\n")):
                break
        first.send_signal(signal.SIGSTOP)  # hold it mid-apply
        second = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
        assert second.returncode == 1
        assert f"locked by pid {first.pid} on " in second.stderr and "(apply, since" in second.stderr
        assert "Traceback" not in second.stderr
        os.kill(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
        first.stderr.close()
    third = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert third.returncode == 0, third.stderr
    assert all(n == 1 for n in owned(server, "dev-proton").values())


def _s3_spec(server: MotoServer, work: Path, lock: str) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="team-state", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_versioning(Bucket="team-state", VersioningConfiguration={"Status": "Enabled"})
    state = {"backend": "s3", "bucket": "team-state", "lock": lock}
    if lock == "dynamodb":
        server.client("dynamodb").create_table(
            TableName="byoc-locks", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}])
        state["dynamodb_table"] = "byoc-locks"
    data = yaml.safe_load((work / "specs/dev.yaml").read_text())
    data["state"] = state
    (work / "specs/dev.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("lock", ["s3"])  # the DynamoDB lock: tests/test_state_s3.py, two processes
def test_s3_backend_apply_killed_holder_and_force_unlock(server: MotoServer, work: Path, lock: str) -> None:
    server.reset()
    _s3_spec(server, work, lock)
    env = server.env()
    code, calls, _ = run_until(["apply", "specs/dev.yaml", "--auto-approve"], env, work, 60)
    assert code == -signal.SIGKILL and calls == 60
    again = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert again.returncode == 1 and "no longer running on this host" in again.stderr
    assert "byoc force-unlock specs/dev.yaml" in again.stderr and "Traceback" not in again.stderr
    p = byoc(["force-unlock", "specs/dev.yaml"], env, work)
    assert p.returncode == 0 and "Removed the lock held by pid" in p.stdout
    p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stderr
    assert all(n == 1 for n in owned(server, "dev-proton").values())
    p = byoc(["plan", "specs/dev.yaml", "--detailed-exitcode"], env, work)
    assert p.returncode == 0, p.stdout
    p = byoc(["destroy", "specs/dev.yaml", "--auto-approve", "--include-data"], env, work)
    assert p.returncode == 0, p.stderr
    assert owned(server, "dev-proton") == {}
    assert not (work / "state").exists()  # nothing local: the state lives in S3
    versions = server.client("s3").list_object_versions(Bucket="team-state",
                                                        Prefix="byoc/dev-proton/state.json")
    # written all along (steps that finish together, or that nothing waits for within 0.2 s, share a write)
    assert len([v for v in versions["Versions"] if v["Key"].endswith("state.json")]) > 15
