"""The whole cluster of specs/prod.yaml on moto: apply → a second plan is empty → destroy keeps
only what holds data → destroy --include-data leaves nothing; node replacement keeps the data
volume; the generated admin password never leaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.planner import PlanOptions
from byoc.render import render_plan, render_plan_json
from byoc.resources.kms_key import KIND as KMS_KEY
from byoc.spec import load_spec
from byoc.state import LocalBackend, State
from tests.awsrealism import free_eips_of_deleted_nat_gateways, log_group_kms_keys

ROOT = Path(__file__).resolve().parents[1]
AMI = "ami-0123456789abcdef0"


def engine_for(ctx: AwsContext, backend: LocalBackend, *overrides: str) -> Engine:
    spec = load_spec(str(ROOT / "specs/prod.yaml"), overrides)
    return Engine(spec, ctx=ctx, backend=backend, ami_resolver=lambda itype: AMI)


@pytest.fixture
def cluster(moto: None, tmp_path: Path) -> Iterator[tuple[AwsContext, LocalBackend]]:
    spec = load_spec(str(ROOT / "specs/prod.yaml"))
    ctx = AwsContext(cluster=spec.cluster_name, region=spec.region, sleep=lambda s: None, poll_delay=0.01)
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    yield ctx, LocalBackend(tmp_path, spec.cluster_name)


def tagged_arns(ctx: AwsContext) -> list[str]:
    """Everything the tagging API still lists for the cluster, minus what moto keeps after
    deletion (terminated instances, deleted NAT gateways) and the KMS keys pending deletion."""
    api = ctx.client("resourcegroupstaggingapi")
    pages = api.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "byoc:cluster", "Values": [ctx.cluster]}])
    arns = [r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]]
    ec2 = ctx.client("ec2")
    live = []
    for arn in arns:
        res = arn.split(":", 5)[5]
        if res.startswith("instance/"):
            state = ec2.describe_instances(InstanceIds=[res.split("/")[1]])["Reservations"][0]["Instances"][0]
            if state["State"]["Name"] in ("terminated", "shutting-down"):
                continue
        if res.startswith("secret:"):
            secret = ctx.client("secretsmanager").describe_secret(SecretId=arn)
            if secret.get("DeletedDate"):  # scheduled for deletion: recoverable for 7 days, as in AWS
                continue
        if res.startswith("key/"):  # scheduled for deletion: gone after its window, as in AWS
            key = ctx.client("kms").describe_key(KeyId=arn)["KeyMetadata"]
            if key["KeyState"] == "PendingDeletion":
                continue
        if res.startswith("natgateway/"):
            nat = ec2.describe_nat_gateways(NatGatewayIds=[res.split("/")[1]])["NatGateways"]
            if not nat or nat[0]["State"] in ("deleted", "deleting"):
                continue
        live.append(arn)
    return sorted(live)


def test_prod_cluster_apply_noop_destroy_keeps_data(cluster: tuple[AwsContext, LocalBackend]) -> None:
    ctx, backend = cluster
    eng = engine_for(ctx, backend)
    plan = eng.plan()
    assert plan.counts()["destroy"] == 0 and plan.counts()["add"] > 60
    assert any("single-node" in n for n in plan.notes)
    result = eng.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    state = eng.state()
    assert state is not None
    out = state.outputs
    assert out["load_balancer_dns_name"] and set(out["endpoints"]) == {"http_batch", "http_streaming"}
    assert out["bucket"] == "my-company-proton-data" and out["log_group"] == "/aws/proton/production-proton"
    assert out["admin_password_secret_arn"].startswith("arn:aws:secretsmanager:")
    assert len(out["instance_ids"]) == 3
    assert state.facts["ami"] == AMI

    ctx.calls.counts.clear()
    again = eng.plan()
    assert not again.has_changes, [(c.address, c.reason) for c in again.actionable]
    # the no-op plan's AWS calls (bench/ measures them per cluster size): one tagging page; eight
    # reads per bucket (data and log bucket); four for the KMS key; eight for the password rotation
    # (its function, code signing, permission, queue and role)
    assert sum(ctx.calls.counts.values()) <= 64, sorted(ctx.calls.counts.items())
    assert ctx.calls.counts[("s3", "GetBucketReplication")] == 2
    # prod's own key: its metadata, rotation, policy, and one list of the region's aliases
    assert {op: n for (svc, op), n in ctx.calls.counts.items() if svc == "kms"} == {
        "DescribeKey": 1, "GetKeyRotationStatus": 1, "GetKeyPolicy": 1, "ListAliases": 1}
    assert ctx.calls.counts[("s3", "GetBucketLogging")] == 2
    assert ctx.calls.counts[("s3", "GetBucketNotificationConfiguration")] == 2
    assert ctx.calls.counts[("tagging", "GetResources")] == 1

    destroy = eng.plan(PlanOptions(destroy=True))
    assert any("aws_s3_bucket.data" in r for r in destroy.refused)
    assert any("aws_s3_bucket.logs" in r for r in destroy.refused)  # the log bucket holds data too
    assert sum("aws_ebs_volume.data" in r for r in destroy.refused) == 3
    assert eng.apply(destroy).ok
    left = tagged_arns(ctx)
    assert any("aws_kms_key.main" in r for r in destroy.refused)  # what the data is encrypted with
    assert sorted(a.split(":", 5)[5].split("/")[0] for a in left) == [
        "key", "my-company-proton-data", "my-company-proton-data-logs", "volume", "volume", "volume"]
    assert not [g for g in ctx.client("logs").describe_log_groups()["logGroups"]
                if "production-proton" in g["logGroupName"]]  # the log groups went before their key

    everything = eng.plan(PlanOptions(destroy=True, allow_data_loss=True))
    assert not everything.refused
    assert eng.apply(everything).ok
    assert tagged_arns(ctx) == []


NODE_LOGS, FLOW_LOGS = "/aws/proton/production-proton", "/aws/vpc-flow-logs/production-proton"
ROTATION_LOGS = "/aws/lambda/production-proton-password-rotation"  # the password rotation function's


def log_group_keys(ctx: AwsContext) -> dict[str, str | None]:
    groups = ctx.client("logs").describe_log_groups(logGroupNamePrefix="/aws/")["logGroups"]
    return {g["logGroupName"]: g.get("kmsKeyId") for g in groups}


def test_the_created_key_encrypts_both_log_groups_and_serves_only_them(
    cluster: tuple[AwsContext, LocalBackend],
) -> None:
    ctx, backend = cluster
    eng = engine_for(ctx, backend)
    assert eng.apply(eng.plan()).ok
    kms = ctx.client("kms")
    key = kms.describe_key(KeyId="alias/byoc/production-proton")["KeyMetadata"]["Arn"]
    assert log_group_keys(ctx) == {NODE_LOGS: key, FLOW_LOGS: key, ROTATION_LOGS: key}
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    root, logs = policy["Statement"]
    assert root["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]} and root["Action"] == ["kms:*"]
    assert logs["Principal"] == {"Service": ["logs.us-west-2.amazonaws.com"]} and logs["Resource"] == ["*"]
    assert logs["Action"] == ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*",
                              "kms:ReEncrypt*"]
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [
        f"arn:aws:logs:us-west-2:123456789012:log-group:{name}"
        for name in sorted((NODE_LOGS, FLOW_LOGS, ROTATION_LOGS))]}}

    # the key taken off a log group by hand: drift names it, the plan puts it back in place
    with log_group_kms_keys():
        ctx.client("logs").disassociate_kms_key(logGroupName=FLOW_LOGS)
        (drifted,) = eng.drift().resources
        assert drifted.address == "aws_cloudwatch_log_group.flow_logs"
        assert [(a.name, a.expected, a.actual) for a in drifted.attributes] == [("kms_key_id", key, None)]
        plan = eng.plan()
        assert [(c.address, c.action) for c in plan.actionable] == [
            ("aws_cloudwatch_log_group.flow_logs", "update")]
        assert eng.apply(plan).ok
    assert log_group_keys(ctx)[FLOW_LOGS] == key and eng.drift().in_sync

    # the logs statement removed from the key's policy by hand: put back in place
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({**policy, "Statement": [root]}))
    plan = eng.plan()
    assert [(c.address, c.action) for c in plan.actionable] == [("aws_kms_key.main", "update")]
    assert eng.apply(plan).ok
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]) == policy
    assert not eng.plan().has_changes


def test_aws_managed_keys_leave_the_log_groups_to_cloudwatch(
    cluster: tuple[AwsContext, LocalBackend],
) -> None:
    ctx, backend = cluster
    eng = engine_for(ctx, backend, "security.encryption.create_kms_key=false")
    assert eng.apply(eng.plan()).ok
    assert log_group_keys(ctx) == {NODE_LOGS: None, FLOW_LOGS: None, ROTATION_LOGS: None}
    assert KMS_KEY.discover(ctx) == []  # no key of the cluster's own
    assert not eng.plan().has_changes


def test_replacing_a_node_keeps_its_data_volume(cluster: tuple[AwsContext, LocalBackend]) -> None:
    ctx, backend = cluster
    eng = engine_for(ctx, backend)
    assert eng.apply(eng.plan()).ok
    before = eng.state().resources  # type: ignore[union-attr]
    eng2 = engine_for(ctx, backend, "compute.instance_type=c5.4xlarge")
    plan = eng2.plan()
    actions = {c.address: c.action for c in plan.changes}
    assert actions['aws_instance.node["0"]'] == "replace"
    assert actions['aws_volume_attachment.data["0"]'] == "replace"
    assert actions['aws_ebs_volume.data["0"]'] == "no-op"
    result = eng2.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    after = eng2.state().resources  # type: ignore[union-attr]
    for key in ("0", "1", "2"):
        volume = before[f'aws_ebs_volume.data["{key}"]'].id
        assert after[f'aws_ebs_volume.data["{key}"]'].id == volume
        new_instance = after[f'aws_instance.node["{key}"]'].id
        assert new_instance != before[f'aws_instance.node["{key}"]'].id
        attached = ctx.client("ec2").describe_volumes(VolumeIds=[volume])["Volumes"][0]["Attachments"]
        assert [(a["InstanceId"], a["State"]) for a in attached] == [(new_instance, "attached")]
    assert not eng2.plan().has_changes


def test_the_admin_password_never_leaks(
    cluster: tuple[AwsContext, LocalBackend], caplog: pytest.LogCaptureFixture
) -> None:
    ctx, backend = cluster
    eng = engine_for(ctx, backend)
    caplog.set_level("DEBUG")
    plan = eng.plan()
    assert eng.apply(plan).ok
    arn = eng.state().outputs["admin_password_secret_arn"]  # type: ignore[union-attr]
    password = ctx.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert len(password) >= 32
    texts = {
        "state": backend.path.read_text(),
        "plan text": render_plan(eng.plan()),
        "plan json": render_plan_json(plan),
        "first plan": json.dumps(plan.to_dict()),
        "logs": caplog.text,
    }
    for where, text in texts.items():
        assert password not in text, f"the admin password leaked into the {where}"


def _dev(moto: None, tmp_path: Path) -> tuple[Engine, AwsContext, str]:
    from tests.daytwo import DEV, engine_for, quiet_ctx

    spec = load_spec(str(DEV))
    ctx = quiet_ctx(spec)
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    return engine_for(spec, ctx, tmp_path), ctx, str(spec.data["storage"]["bucket_name"])


def _untagged_bucket_with_data(ctx: AwsContext, name: str) -> None:
    """What a first apply killed between CreateBucket and PutBucketTagging leaves (plus data)."""
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ctx.region})
    s3.put_object(Bucket=name, Key="streams/part-0", Body=b"proton data")


def test_an_untagged_bucket_left_by_a_killed_run_passes_preflight_and_is_adopted(
    moto: None, tmp_path: Path
) -> None:
    from byoc.operations.preflight import OK, run_preflight

    eng, ctx, name = _dev(moto, tmp_path)
    _untagged_bucket_with_data(ctx, name)
    eng.backend.write(State.new("dev-proton").bumped())  # what apply writes before its first call
    checks = {c.name: c for c in run_preflight(ctx, eng.spec)}
    assert checks["bucket"].status == OK, checks["bucket"]
    plan = eng.plan()
    assert "aws_s3_bucket.data" in plan.adopt and plan.change("aws_s3_bucket.data").action == "update"
    assert eng.apply(plan).ok
    assert not eng.plan().has_changes and eng.drift().in_sync
    s3 = ctx.client("s3")
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
    assert tags["byoc:address"] == "aws_s3_bucket.data" and tags["byoc:cluster"] == "dev-proton"
    s3.delete_bucket_policy(Bucket=name)  # moto denies every object call under the TLS-only policy
    assert s3.get_object(Bucket=name, Key="streams/part-0")["Body"].read() == b"proton data"


def test_destroy_finds_an_untagged_bucket_and_deletes_it_only_with_include_data(
    moto: None, tmp_path: Path
) -> None:
    eng, ctx, name = _dev(moto, tmp_path)
    s3 = ctx.client("s3")
    # a first apply killed right after CreateBucket: the bucket has no tags, and the state is the
    # empty one apply writes before its first AWS call
    _untagged_bucket_with_data(ctx, name)
    eng.backend.write(State.new("dev-proton").bumped())
    kept = eng.plan(PlanOptions(destroy=True))
    assert not kept.actionable
    assert any(r.startswith(f"aws_s3_bucket.data ({name}) holds data and was kept") for r in kept.refused)
    assert f"aws_s3_bucket.data ({name}) holds data and was kept" in render_plan(kept)
    gone = eng.plan(PlanOptions(destroy=True, allow_data_loss=True))
    actions = [(c.address, c.action, c.prior_id) for c in gone.actionable]
    assert actions == [("aws_s3_bucket.data", "delete", name)]
    assert eng.apply(gone).ok
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    # recorded in the state, its tags removed by hand: still found by the state's name
    assert eng.apply(eng.plan()).ok
    s3.delete_bucket_policy(Bucket=name)  # moto denies every object call under the TLS-only policy
    s3.put_object(Bucket=name, Key="streams/part-0", Body=b"proton data")
    s3.delete_bucket_tagging(Bucket=name)
    assert eng.apply(eng.plan(PlanOptions(destroy=True))).ok
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # kept without the flag
    assert eng.apply(eng.plan(PlanOptions(destroy=True, allow_data_loss=True))).ok
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert tagged_arns(ctx) == []


def test_resources_with_only_the_cluster_tag_are_unmanaged_and_go_with_destroy(
    moto: None, tmp_path: Path
) -> None:
    eng, ctx, _ = _dev(moto, tmp_path)
    assert eng.apply(eng.plan()).ok
    only_cluster = [{"Key": "byoc:cluster", "Value": "dev-proton"}]
    ec2 = ctx.client("ec2")
    # EC2 kinds (found through their describe-by-tag filter); the subnet must go before its VPC
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": only_cluster}])["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": only_cluster}])["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="stray", Description="stray", VpcId=vpc, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": only_cluster}])["GroupId"]
    # kinds found through the tagging index
    ctx.client("logs").create_log_group(logGroupName="/stray/logs", tags={"byoc:cluster": "dev-proton"})
    topic = ctx.client("sns").create_topic(Name="stray-topic", Tags=only_cluster)["TopicArn"]
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket="dev-proton-stray-data",
                     CreateBucketConfiguration={"LocationConstraint": ctx.region})
    s3.put_bucket_tagging(Bucket="dev-proton-stray-data", Tagging={"TagSet": only_cluster})
    strays = {
        f'aws_vpc.unmanaged["{vpc}"]', f'aws_subnet.unmanaged["{subnet}"]',
        f'aws_security_group.unmanaged["{sg}"]', 'aws_cloudwatch_log_group.unmanaged["/stray/logs"]',
        f'aws_sns_topic.unmanaged["{topic}"]', 'aws_s3_bucket.unmanaged["dev-proton-stray-data"]',
    }

    report = eng.drift().to_dict()
    assert {r["address"] for r in report["resources"] if r["status"] == "unmanaged"} == strays
    assert not any(r["adoptable"] for r in report["resources"])
    plan = eng.plan()
    assert set(plan.unmanaged) == strays and not plan.actionable  # never adopted, left alone

    destroy = eng.plan(PlanOptions(destroy=True))
    deleted = {c.address for c in destroy.actionable}
    assert strays - deleted == {'aws_s3_bucket.unmanaged["dev-proton-stray-data"]'}
    kept = 'aws_s3_bucket.unmanaged["dev-proton-stray-data"] (dev-proton-stray-data) holds data'
    assert any(r.startswith(kept) for r in destroy.refused)
    # ordered by the AWS ids they refer to: the subnet and the group go before their VPC
    for address in (f'aws_subnet.unmanaged["{subnet}"]', f'aws_security_group.unmanaged["{sg}"]'):
        assert destroy.change(address).old_depends_on == (f'aws_vpc.unmanaged["{vpc}"]',)
    result = eng.apply(destroy)
    assert result.ok, [str(f.error) for f in result.failures]
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Vpcs"]
    assert not ctx.client("logs").describe_log_groups(logGroupNamePrefix="/stray")["logGroups"]
    assert topic not in [t["TopicArn"] for t in ctx.client("sns").list_topics()["Topics"]]
    assert "dev-proton-stray-data" in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # kept
    assert eng.apply(eng.plan(PlanOptions(destroy=True, allow_data_loss=True))).ok
    assert s3.list_buckets()["Buckets"] == []


def test_replacing_the_load_balancer_turns_its_deletion_protection_off_first(
    cluster: tuple[AwsContext, LocalBackend]
) -> None:
    # moto refuses to delete a protected load balancer here, as AWS does (tests.awsrealism)
    ctx, backend = cluster
    eng = engine_for(ctx, backend)
    assert eng.apply(eng.plan()).ok
    old = eng.state().resources["aws_lb.main"].id  # type: ignore[union-attr]
    internet = engine_for(ctx, backend, "network.public_access=true")
    plan = internet.plan()
    assert plan.change("aws_lb.main").action == "replace"
    events: list[Any] = []
    result = internet.apply(plan, on_event=events.append)
    assert result.ok, [str(f.error) for f in result.failures]
    mine = [(e.kind, e.action, e.message) for e in events if e.address == "aws_lb.main"]
    assert mine[:3] == [("start", "destroy", ""), ("note", "destroy", "deletion protection turned off"),
                        ("done", "destroy", "")]
    new = internet.state().resources["aws_lb.main"]  # type: ignore[union-attr]
    assert new.id != old and new.props["enable_deletion_protection"] is True
    assert not internet.plan().has_changes

DR_BUCKET = "my-company-proton-dr"
DR_KEY = "arn:aws:kms:us-east-1:123456789012:key/abcd1234-12ab-34cd-56ef-1234567890ab"
#: prod's bucket is SSE-KMS under its own key: its replicas need a key in the destination's region
REPLICATION = (f"storage.replication={{destination_bucket_arn: arn:aws:s3:::{DR_BUCKET}, "
               f"storage_class: STANDARD_IA, destination_kms_key_arn: {DR_KEY}}}")


def call_order(ctx: AwsContext) -> list[str]:
    """The S3 and IAM operations ``ctx`` sends from now on, in order."""
    seen: list[str] = []
    for service in ("s3", "iam"):
        ctx.client(service).meta.events.register_first(
            f"before-call.{service}", lambda model, **kw: seen.append(model.name))
    return seen


def test_replication_applies_reads_back_goes_with_the_option_and_before_its_role(
    cluster: tuple[AwsContext, LocalBackend],
) -> None:
    ctx, backend = cluster
    s3, iam = ctx.client("s3"), ctx.client("iam")
    dr = boto3.client("s3", region_name="us-east-1")
    dr.create_bucket(Bucket=DR_BUCKET)  # the user's, in another region
    dr.put_bucket_versioning(Bucket=DR_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    eng = engine_for(ctx, backend, REPLICATION)
    result = eng.apply(eng.plan())
    assert result.ok, [str(f.error) for f in result.failures]
    role = iam.get_role(RoleName="production-proton-replication")["Role"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Principal"], trust["Condition"]) == (
        {"Service": ["s3.amazonaws.com"]}, {"StringEquals": {"aws:SourceAccount": ["123456789012"]}})
    conf = s3.get_bucket_replication(Bucket="my-company-proton-data")["ReplicationConfiguration"]
    assert conf["Role"] == role["Arn"]
    assert conf["Rules"][0]["Destination"] == {"Bucket": f"arn:aws:s3:::{DR_BUCKET}",
                                               "StorageClass": "STANDARD_IA",
                                               "EncryptionConfiguration": {"ReplicaKmsKeyID": DR_KEY}}
    with pytest.raises(ClientError, match="ReplicationConfigurationNotFound"):
        s3.get_bucket_replication(Bucket="my-company-proton-data-logs")  # the log bucket is not replicated
    assert not eng.plan().has_changes

    # removed by hand: drift, and apply puts it back
    s3.delete_bucket_replication(Bucket="my-company-proton-data")
    plan = eng.plan()
    assert [(c.address, [a.name for a in c.attributes]) for c in plan.actionable] == [
        ("aws_s3_bucket.data", ["replication_configuration"])]
    assert eng.apply(plan).ok and not eng.plan().has_changes

    # the option off: the configuration goes before its role
    off = engine_for(ctx, backend)
    plan = off.plan()
    assert {c.address: c.action for c in plan.actionable} == {
        "aws_s3_bucket.data": "update", "aws_iam_role.replication": "delete"}
    seen = call_order(ctx)
    assert off.apply(plan).ok and not off.plan().has_changes
    assert seen.index("DeleteBucketReplication") < seen.index("DeleteRole")
    with pytest.raises(ClientError, match="ReplicationConfigurationNotFound"):
        s3.get_bucket_replication(Bucket="my-company-proton-data")


def test_destroy_keeps_the_bucket_without_its_replication_and_deletes_the_role_after(
    cluster: tuple[AwsContext, LocalBackend],
) -> None:
    ctx, backend = cluster
    eng = engine_for(ctx, backend, REPLICATION)
    assert eng.apply(eng.plan()).ok
    destroy = eng.plan(PlanOptions(destroy=True))
    kept = destroy.change("aws_s3_bucket.data")
    assert kept.action == "update"
    assert [a.name for a in kept.attributes] == ["replication_configuration"]
    assert "kept" in kept.reason and any("aws_s3_bucket.data" in r for r in destroy.refused)
    assert "replication_configuration" in render_plan(destroy)
    seen = call_order(ctx)
    result = eng.apply(destroy)
    assert result.ok, [str(f.error) for f in result.failures]
    # the role goes only after the kept bucket stopped naming it
    assert seen.index("DeleteBucketReplication") < seen.index("DeleteRole")
    s3 = ctx.client("s3")
    with pytest.raises(ClientError, match="ReplicationConfigurationNotFound"):
        s3.get_bucket_replication(Bucket="my-company-proton-data")
    assert s3.get_bucket_versioning(Bucket="my-company-proton-data")["Status"] == "Enabled"  # kept
    with pytest.raises(ClientError, match="NoSuchEntity"):
        ctx.client("iam").get_role(RoleName="production-proton-replication")
