"""The real CLI in a subprocess against a moto server on 127.0.0.1, exit codes included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from byoc.state import LocalBackend, State
from tests.motoserver import ROOT, MotoServer


@pytest.fixture
def aws(server: MotoServer) -> MotoServer:
    server.reset()
    return server


def byoc(
    args: list[str], env: dict[str, str] | None, cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "byoc", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=300)



def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stdout + p.stderr


def test_validate(work: Path) -> None:
    ok = byoc(["validate", "specs/dev.yaml"], None, work)
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = byoc(["validate", "specs/dev.yaml", "--set", "compute.instance_count=0"], None, work)
    assert bad.returncode == 1
    assert "compute.instance_count: 0 is less than the minimum of 1" in bad.stderr
    no_traceback(bad)
    missing = byoc(["plan", "specs/nope.yaml"], None, work)
    assert missing.returncode == 1 and "specs/nope.yaml" in missing.stderr
    no_traceback(missing)
    usage = byoc(["plan"], None, work)
    assert usage.returncode == 1
    no_traceback(usage)


def test_graph_prints_dot(work: Path) -> None:
    p = byoc(["graph", "specs/dev.yaml"], None, work)
    assert p.returncode == 0
    assert p.stdout.startswith("digraph byoc {")
    assert '"aws_vpc.main" -> "aws_subnet.private[\\"us-west-2a\\"]";' in p.stdout


def test_lifecycle_with_exit_codes(aws: MotoServer, work: Path) -> None:
    env = aws.env()
    p = byoc(["plan", "specs/dev.yaml", "--detailed-exitcode"], env, work)
    assert p.returncode == 2, p.stderr
    assert "Plan: 44 to add, 0 to change, 0 to destroy." in p.stdout
    assert '+ resource "aws_vpc" "main" {' in p.stdout

    p = byoc(["apply", "specs/dev.yaml"], env, work)
    assert p.returncode == 1 and "--auto-approve" in p.stderr
    no_traceback(p)

    p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    outputs = p.stdout + p.stderr
    assert "aws_vpc.main: Creation complete after" in p.stdout
    assert "Apply complete! Resources: 44 added, 0 changed, 0 destroyed." in p.stdout
    assert (work / "state/dev-proton.json").exists()
    elb = aws.client("elbv2")
    lb_arn = elb.describe_load_balancers(Names=["dev-proton-lb"])["LoadBalancers"][0]["LoadBalancerArn"]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
        LoadBalancerArn=lb_arn)["Attributes"]}
    assert attrs["deletion_protection.enabled"] == "true" and attrs["access_logs.s3.enabled"] == "true"
    assert attrs["access_logs.s3.bucket"] == "dev-proton-data-byoc-example-logs"
    logging = aws.client("s3").get_bucket_logging(Bucket="dev-proton-data-byoc-example")["LoggingEnabled"]
    assert logging == {"TargetBucket": "dev-proton-data-byoc-example-logs", "TargetPrefix": "s3-access/"}
    for bucket in ("dev-proton-data-byoc-example", "dev-proton-data-byoc-example-logs"):
        events = aws.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        assert events["EventBridgeConfiguration"] == {}  # both buckets' events go to EventBridge

    p = byoc(["plan", "specs/dev.yaml", "--detailed-exitcode"], env, work)
    assert p.returncode == 0, p.stdout
    assert "No changes." in p.stdout

    p = byoc(["output", "specs/dev.yaml", "--json"], env, work)
    assert p.returncode == 0 and '"vpc_id": "vpc-' in p.stdout
    secret_arn = json.loads(p.stdout)["admin_password_secret_arn"]
    password = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    shown = byoc(["show", "specs/dev.yaml", "--json"], env, work).stdout + p.stdout + outputs
    assert password not in shown and password not in (work / "state/dev-proton.json").read_text()

    p = byoc(["destroy", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Destroy complete! Resources: 0 added, 0 changed, 41 destroyed." in p.stdout
    assert "aws_s3_bucket.data (dev-proton-data-byoc-example) holds data and was kept" in p.stdout
    assert "aws_s3_bucket.logs (dev-proton-data-byoc-example-logs) holds data and was kept" in p.stdout
    # the load balancer is protected against deletion: destroy turns that off first, and says so
    lines = p.stdout.splitlines()
    said = lines.index("aws_lb.main: deletion protection turned off")
    assert lines.index("aws_lb.main: Destroying...") < said
    assert any(line.startswith("aws_lb.main: Destruction complete") for line in lines[said:])
    assert "Estimated cost: $" in p.stdout and "/month after this plan (-$" in p.stdout
    ec2 = aws.client("ec2")
    owned = [{"Name": "tag:byoc:cluster", "Values": ["dev-proton"]}]
    assert ec2.describe_vpcs(Filters=owned)["Vpcs"] == []
    available = [*owned, {"Name": "status", "Values": ["available"]}]
    assert len(ec2.describe_volumes(Filters=available)["Volumes"]) == 1

    p = byoc(["destroy", "specs/dev.yaml", "--auto-approve", "--include-data"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Destroy complete! Resources: 0 added, 0 changed, 3 destroyed." in p.stdout
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert ec2.describe_volumes(Filters=available)["Volumes"] == []


def test_saved_plan_is_applied_once_and_then_refused_as_stale(aws: MotoServer, work: Path) -> None:
    env = aws.env()
    p = byoc(["plan", "specs/dev.yaml", "-o", "dev.plan"], env, work)
    assert p.returncode == 0 and "byoc apply dev.plan" in p.stdout
    assert (work / "dev.plan").read_text().count("\n") == 1  # one line, as Terraform writes it
    p = byoc(["show", "dev.plan", "--json"], env, work)
    assert p.returncode == 0 and p.stdout.count("\n") == 1 and '"format_version":"1.2"' in p.stdout
    bucket = next(r for r in json.loads(p.stdout)["planned_values"]["root_module"]["resources"]
                  if r["type"] == "aws_s3_bucket")
    assert bucket["values"]["versioning"] == [{"enabled": True, "mfa_delete": False}]  # provider shape
    p = byoc(["show", "dev.plan", "--json", "--pretty"], env, work)
    assert p.returncode == 0 and '\n  "format_version": "1.2"' in p.stdout
    p = byoc(["apply", "dev.plan"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    p = byoc(["apply", "dev.plan"], env, work)
    assert p.returncode == 1 and "stale" in p.stderr
    no_traceback(p)
    # a plan whose spec changed since is refused too
    p = byoc(["plan", "specs/dev.yaml", "-o", "dev2.plan", "--destroy"], env, work)
    spec = work / "specs/dev.yaml"
    spec.write_text(spec.read_text().replace("disk_size_gb: 20", "disk_size_gb: 30"))
    p = byoc(["apply", "dev2.plan"], env, work)
    assert p.returncode == 1 and "has changed since this plan was made" in p.stderr


def test_second_apply_fails_fast_naming_the_lock_holder(aws: MotoServer, work: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time\nfrom byoc.state import LocalBackend\n"
         "with LocalBackend('state','dev-proton').lock('apply'):\n"
         " print('locked',flush=True); time.sleep(60)"],
        cwd=work, stdout=subprocess.PIPE, text=True, env={**aws.env(), "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], aws.env(), work)
        assert p.returncode == 1
        assert f"locked by pid {holder.pid}" in p.stderr
    finally:
        holder.kill()
        holder.wait()


def test_no_credentials_is_a_clear_error(work: Path) -> None:
    env = {k: v for k, v in MotoServer.__dict__.items() if False}  # empty env: no AWS at all
    env.update({"PATH": "/usr/bin:/bin", "HOME": str(work), "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(work / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "none")})
    p = byoc(["plan", "specs/dev.yaml"], env, work)
    assert p.returncode == 1
    assert "credentials" in p.stderr
    no_traceback(p)


def test_preflight_cost_and_the_plan_footer(aws: MotoServer, work: Path) -> None:
    env = aws.env()
    p = byoc(["preflight", "specs/dev.yaml"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "✓ credentials" in p.stdout and "✓ bucket" in p.stdout
    p = byoc(["preflight", "specs/dev.yaml", "--set", "compute.ssh_key_name=no-such-key"], env, work)
    assert p.returncode == 1 and "✗ key-pair" in p.stdout
    no_traceback(p)
    # apply runs the same checks first and changes nothing when one fails
    bad_key = ["--set", "compute.ssh_key_name=no-such-key"]
    p = byoc(["apply", "specs/dev.yaml", "--auto-approve", *bad_key], env, work)
    assert p.returncode == 1 and "preflight checks failed: nothing was changed" in p.stderr
    assert aws.client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:byoc:cluster", "Values": ["dev-proton"]}])["Vpcs"] == []
    p = byoc(["cost", "specs/dev.yaml"], None, work)
    assert p.returncode == 0 and "Total per month" in p.stdout and "t3.large" in p.stdout
    p = byoc(["plan", "specs/dev.yaml"], env, work)
    assert "Estimated cost: $0/month now → $" in p.stdout


def test_another_directory_never_makes_a_second_state_without_adopt(aws: MotoServer, work: Path) -> None:
    """The state path is relative to the working directory (as in Terraform) and every plan says
    where it is; from another directory, plan/scale/destroy/apply refuse (exit 1) to take the
    deployed cluster into a new state, naming the path looked for; --adopt takes it over."""
    env = aws.env()
    p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith(f"State: state/dev-proton.json (local: {work}/state/dev-proton.json)\n")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    looked = ("no state for cluster dev-proton at state/dev-proton.json "
              f"(local: {elsewhere}/state/dev-proton.json)")
    spec_text = (work / "specs/dev.yaml").read_text()
    for args in (["plan", "../specs/dev.yaml"],
                 ["scale", "../specs/dev.yaml", "--count", "2", "--auto-approve"],
                 ["destroy", "../specs/dev.yaml", "--auto-approve"]):
        p = byoc(args, env, elsewhere)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        err = " ".join(p.stderr.split())
        assert looked in err and "another directory" in err and "S3 backend" in err, err
        assert "run again with --adopt" in err and "interrupted before it saved any state" in err
        no_traceback(p)
    assert not (elsewhere / "state/dev-proton.json").exists()
    assert (work / "specs/dev.yaml").read_text() == spec_text
    p = byoc(["apply", "../specs/dev.yaml", "--adopt", "--auto-approve"], env, elsewhere)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Apply complete! Resources: 44 adopted, 0 added, 0 changed, 0 destroyed." in p.stdout
    state = json.loads((elsewhere / "state/dev-proton.json").read_text())
    assert len(state["resources"]) == 44


def _node_policies(aws: MotoServer) -> str:
    """Every inline policy of the cluster's roles, as one text."""
    iam = aws.client("iam")
    out = []
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            out.append(json.dumps(iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)))
    return "\n".join(out)


def test_a_change_that_would_replace_protected_data_changes_nothing(aws: MotoServer, work: Path) -> None:
    env = aws.env()
    p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    ec2 = aws.client("ec2")
    owned = [{"Name": "tag:byoc:cluster", "Values": ["dev-proton"]},
             {"Name": "instance-state-name", "Values": ["running", "pending"]}]

    def instances() -> list[str]:
        return sorted(i["InstanceId"] for r in ec2.describe_instances(Filters=owned)["Reservations"]
                      for i in r["Instances"])

    before = instances()
    assert "dev-proton-data-byoc-example" in _node_policies(aws)
    state = (work / "state/dev-proton.json").read_text()

    cases = [
        ("storage.bucket_name=dev-proton-renamed", "aws_s3_bucket.data (dev-proton-data-byoc-example): "
         "bucket cannot change in place", "set storage.bucket_name back to 'dev-proton-data-byoc-example'"),
        ('aws.availability_zones=["us-west-2b","us-west-2c"]', 'aws_ebs_volume.data["0"] (vol-',
         "keep 'us-west-2a' in aws.availability_zones"),
    ]
    for override, what, keep in cases:
        for command in (["plan"], ["apply", "--auto-approve"]):
            p = byoc([*command, "specs/dev.yaml", "--set", override], env, work)
            assert p.returncode == 1, (command, p.stdout + p.stderr)
            no_traceback(p)
            assert what in p.stderr and keep in p.stderr and "--include-data" in p.stderr
            assert "byoc backup" in p.stderr or "aws s3 sync" in p.stderr
    # nothing changed in AWS: the nodes keep their bucket, the instance was not replaced
    policies = _node_policies(aws)
    assert "dev-proton-data-byoc-example" in policies and "dev-proton-renamed" not in policies
    assert instances() == before
    assert (work / "state/dev-proton.json").read_text() == state
    p = byoc(["plan", "specs/dev.yaml", "--detailed-exitcode"], env, work)
    assert p.returncode == 0 and "No changes." in p.stdout


def test_a_killed_runs_untagged_bucket_is_adopted_and_cluster_tagged_strays_are_unmanaged(
    aws: MotoServer, work: Path
) -> None:
    env = aws.env()
    s3 = aws.client("s3")
    # a first apply killed between CreateBucket and its tagging: the bucket, and the empty state
    # that apply writes before its first AWS call
    s3.create_bucket(Bucket="dev-proton-data-byoc-example",
                     CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    LocalBackend(work / "state", "dev-proton").write(State.new("dev-proton").bumped())
    p = byoc(["preflight", "specs/dev.yaml", "--json"], env, work)
    bucket = next(c for c in json.loads(p.stdout) if c["name"] == "bucket")
    assert bucket["status"] == "ok" and "adopts it" in bucket["message"], bucket
    p = byoc(["apply", "specs/dev.yaml", "--auto-approve"], env, work)  # with preflight
    assert p.returncode == 0, p.stdout + p.stderr
    tag_set = s3.get_bucket_tagging(Bucket="dev-proton-data-byoc-example")["TagSet"]
    tags = {t["Key"]: t["Value"] for t in tag_set}
    assert tags["byoc:address"] == "aws_s3_bucket.data"
    p = byoc(["plan", "specs/dev.yaml", "--detailed-exitcode"], env, work)
    assert p.returncode == 0 and "No changes." in p.stdout

    ec2 = aws.client("ec2")
    only_cluster = [{"Key": "byoc:cluster", "Value": "dev-proton"}]
    owned = [{"Name": "tag:byoc:cluster", "Values": ["dev-proton"]}]
    vpc = ec2.describe_vpcs(Filters=owned)["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="stray", Description="stray", VpcId=vpc, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": only_cluster}])["GroupId"]
    p = byoc(["drift", "specs/dev.yaml"], env, work)
    assert p.returncode == 2 and f'aws_security_group.unmanaged["{sg}"]' in p.stdout, p.stdout + p.stderr
    p = byoc(["destroy", "specs/dev.yaml", "--auto-approve"], env, work)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroups"]


def test_terraform_flag_spellings_end_to_end(aws: MotoServer, work: Path) -> None:
    """-out=FILE saves to FILE (never `-o ut=FILE`), -input=false refuses to ask, -auto-approve,
    -parallelism, -lock-timeout, `output NAME -raw`, `destroy -target`, `-v` after the command."""
    env = aws.env()
    p = byoc(["plan", "specs/dev.yaml", "-out=dev.plan", "-no-color", "-detailed-exitcode"], env, work)
    assert p.returncode == 2, p.stderr
    assert (work / "dev.plan").is_file() and not (work / "ut=dev.plan").exists()
    p = byoc(["apply", "specs/dev.yaml", "-input=false"], env, work)
    assert p.returncode == 1 and "-input=false forbids asking" in p.stderr
    no_traceback(p)
    p = byoc(["apply", "-auto-approve", "-parallelism=4", "-lock-timeout=5s", "specs/dev.yaml", "-v"],
             env, work)
    assert p.returncode == 0, p.stderr[-3000:]
    assert " aws ec2 CreateVpc" in p.stderr  # -v after the command logs the AWS calls
    p = byoc(["output", "specs/dev.yaml", "vpc_id", "-raw"], env, work)
    assert p.returncode == 0 and p.stdout.startswith("vpc-") and '"' not in p.stdout and "\n" not in p.stdout
    p = byoc(["destroy", "specs/dev.yaml", "-target=aws_lb.main", "-auto-approve"], env, work)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "aws_lb.main: Destruction complete" in p.stdout
    assert "aws_vpc.main" not in p.stdout and "aws_lb_target_group.main" not in p.stdout
    state = json.loads((work / "state/dev-proton.json").read_text())
    addresses = {r["address"] for r in state["resources"]}
    assert "aws_lb.main" not in addresses and "aws_vpc.main" in addresses
    p = byoc(["plan", "specs/dev.yaml", "-detailed-exitcode"], env, work)
    assert p.returncode == 2 and "aws_lb.main will be created" in p.stdout
