"""Preflight against moto: a healthy spec passes; each failure is produced for real in moto where
moto can, else injected through botocore's events (quota answers, offerings, expired credentials)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from byoc.aws.context import AwsContext
from byoc.aws.tags import ADDRESS_TAG, CLUSTER_TAG
from byoc.operations.preflight import (
    FAIL,
    OK,
    ORDER,
    SKIPPED,
    WARN,
    Check,
    failed,
    nodes_added,
    run_preflight,
)
from byoc.plan import CREATE, NOOP, REPLACE, Change, Plan
from byoc.spec import Spec, load_spec

CLUSTER = "dev-proton"  # specs/dev.yaml's cluster name: what byoc tags its resources with
BUCKET = "dev-proton-data-byoc-example"
CERT = "arn:aws:acm:{region}:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab"


def dev(*overrides: str) -> Spec:
    return load_spec("specs/dev.yaml", overrides)


def run(ctx: AwsContext, spec: Spec | None = None, **kw: Any) -> dict[str, Check]:
    checks = run_preflight(ctx, spec or dev(), **kw)
    assert [c.name for c in checks] == list(ORDER)
    return {c.name: c for c in checks}


# -- injection through botocore's events --------------------------------------------------------
def on(ctx: AwsContext, service: str, event: str, hook: Callable[..., Any]) -> None:
    ctx.client(service).meta.events.register_first(event, hook)


def event_id(ctx: AwsContext, service: str) -> str:
    return str(ctx.client(service).meta.service_model.service_id.hyphenize())


def refuse(ctx: AwsContext, service: str, op: str, code: str) -> None:
    """``op`` answers AWS's error ``code`` ('*' for every operation of the service)."""

    def hook(model: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, model.name)

    on(ctx, service, f"before-call.{event_id(ctx, service)}" + ("" if op == "*" else f".{op}"), hook)


def edit(ctx: AwsContext, service: str, op: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit moto's real answer to ``op`` before boto3 returns it."""

    def hook(parsed: dict[str, Any], **kwargs: Any) -> None:
        change(parsed)

    on(ctx, service, f"after-call.{event_id(ctx, service)}.{op}", hook)


def quotas(ctx: AwsContext, values: dict[str, float]) -> list[str]:
    """Service Quotas answers ``values`` by quota code (read at each call; others: moto's own
    answer); returns the codes asked."""
    asked: list[str] = []

    def hook(params: dict[str, Any], model: Any, **kwargs: Any) -> Any:
        code = json.loads(params["body"])["QuotaCode"]
        asked.append(code)
        if code not in values:
            return None
        quota = {"QuotaCode": code, "Value": values[code]}
        return AWSResponse("https://servicequotas", 200, {}, None), {"Quota": quota}

    on(ctx, "service-quotas", "before-call.service-quotas.GetServiceQuota", hook)
    return asked


def image(ctx: AwsContext) -> str:
    return str(ctx.client("ec2").register_image(Name="preflight-test", RootDeviceName="/dev/xvda")["ImageId"])


def launch(ctx: AwsContext, itype: str, count: int = 1, spot: bool = False) -> None:
    market = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
    ctx.client("ec2").run_instances(ImageId=image(ctx), InstanceType=itype, MinCount=count, MaxCount=count,
                                    **market)


# -- the whole run ---------------------------------------------------------------------------------
def test_a_healthy_dev_spec_fails_nothing(ctx: AwsContext) -> None:
    checks = run(ctx)
    assert not failed(list(checks.values()))
    assert {n: c.status for n, c in checks.items()} == {
        "credentials": OK, "availability-zones": OK, "instance-type": OK,
        # moto 5.2's Service Quotas knows the VPC quotas only: the others are honestly unchecked
        "quota:vcpus": WARN, "quota:vpcs": OK, "quota:eips": WARN, "quota:nat-gateways": OK,
        "quota:load-balancers": WARN, "ami": OK, "bucket": OK, "log-bucket": OK, "replication": SKIPPED,
        "key-pair": SKIPPED,
        "certificate": SKIPPED,
    }
    assert "account 123456789012 as arn:aws:sts::123456789012:" in checks["credentials"].message
    assert checks["instance-type"].message == "t3.large (2 vCPUs) is offered in us-west-2a, us-west-2b"
    assert checks["quota:vpcs"].message == (
        "VPCs per Region: needs 2 of 5 (1 in use + 1 for the cluster's VPC)")
    assert checks["bucket"].message == f"{BUCKET}: the name is free"
    assert checks["ami"].message.startswith("the current Amazon Linux 2023 for t3.large is ami-")
    for name in ("quota:vcpus", "quota:eips", "quota:load-balancers"):
        assert checks[name].message.startswith("could not check the ")
        assert "NoSuchResourceException" in checks[name].message
        assert "Service Quotas console" in checks[name].fix


def test_failed_is_any_fail() -> None:
    assert not failed([Check("a", OK, ""), Check("b", WARN, ""), Check("c", SKIPPED, "")])
    assert failed([Check("a", OK, ""), Check("b", FAIL, "", "do this")])


def test_nodes_added_counts_created_instances_only() -> None:
    def change(address: str, action: str) -> Change:
        return Change(address, address.split(".")[0], action, "")

    plan = Plan("c", None, 0, "", "", (), (
        change("aws_instance.node[0]", NOOP), change("aws_instance.node[1]", REPLACE),
        change("aws_instance.node[2]", CREATE), change("aws_instance.node[3]", CREATE),
        change("aws_vpc.main", CREATE),
    ))
    assert nodes_added(plan) == 2


# -- credentials and region ------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["ExpiredToken", "InvalidClientTokenId"])
def test_bad_credentials_fail_and_skip_the_rest(ctx: AwsContext, code: str) -> None:
    refuse(ctx, "sts", "GetCallerIdentity", code)
    checks = run(ctx)
    assert checks["credentials"].status == FAIL and code in checks["credentials"].message
    assert "AWS_PROFILE" in checks["credentials"].fix and "aws configure" in checks["credentials"].fix
    assert "sandbox" in checks["credentials"].fix
    rest = [c for n, c in checks.items() if n != "credentials"]
    assert all(c.status == SKIPPED and "credentials" in c.message for c in rest)


def test_no_credentials_at_all(ctx: AwsContext) -> None:
    def hook(**kwargs: Any) -> None:
        raise NoCredentialsError()

    on(ctx, "sts", "before-call.sts.GetCallerIdentity", hook)
    checks = run(ctx)
    assert checks["credentials"].status == FAIL and "NoCredentialsError" in checks["credentials"].message
    assert checks["bucket"].status == SKIPPED


def test_an_unreachable_sts_endpoint_is_not_called_a_credentials_problem(ctx: AwsContext) -> None:
    def hook(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sts.us-west-2.amazonaws.com/",
                                      error=ConnectionRefusedError(111, "Connection refused"))

    on(ctx, "sts", "before-call.sts.GetCallerIdentity", hook)
    creds = run(ctx)["credentials"]
    assert creds.status == FAIL
    assert creds.message.startswith(
        "cannot reach AWS at https://sts.us-west-2.amazonaws.com (connection refused)")
    assert "AWS_ENDPOINT_URL" in creds.fix and "AWS_PROFILE" not in creds.fix


def test_invalid_credentials_are_told_from_missing_ones(ctx: AwsContext) -> None:
    refuse(ctx, "sts", "GetCallerIdentity", "InvalidClientTokenId")
    creds = run(ctx)["credentials"]
    assert creds.status == FAIL and creds.message.startswith("the AWS credentials are not valid")
    assert creds.fix.startswith("renew or replace them")


def test_a_region_not_enabled_fails_zones_and_skips_the_regional_checks(ctx: AwsContext) -> None:
    refuse(ctx, "ec2", "DescribeAvailabilityZones", "OptInRequired")
    checks = run(ctx)
    zones = checks["availability-zones"]
    assert zones.status == FAIL and zones.message.startswith("cannot use region us-west-2: OptInRequired")
    assert "enable us-west-2" in zones.fix and "another aws.region" in zones.fix
    assert checks["credentials"].status == OK
    assert all(c.status == SKIPPED and "region" in c.message for c in list(checks.values())[2:])


def test_an_unreachable_region_endpoint(ctx: AwsContext) -> None:
    def hook(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://ec2.xx-nowhere-1.amazonaws.com/")

    on(ctx, "ec2", "before-call.ec2.DescribeAvailabilityZones", hook)
    checks = run(ctx)
    assert checks["availability-zones"].status == FAIL and "EndpointConnectionError" in checks[
        "availability-zones"].message
    assert checks["ami"].status == SKIPPED


def test_an_unknown_zone_fails_listing_the_available_ones(ctx: AwsContext) -> None:
    checks = run(ctx, dev("aws.availability_zones=[us-west-2a, us-west-2e]"))
    zones = checks["availability-zones"]
    assert zones.status == FAIL and zones.message == "us-west-2e is not a zone of us-west-2"
    assert zones.fix.endswith("us-west-2a, us-west-2b, us-west-2c, us-west-2d")
    # the other checks still run, and the missing zone is not blamed on the instance type
    assert checks["instance-type"].status == OK and checks["bucket"].status == OK


def test_an_impaired_zone_fails(ctx: AwsContext) -> None:
    def impair(parsed: dict[str, Any]) -> None:
        for zone in parsed["AvailabilityZones"]:
            if zone["ZoneName"] == "us-west-2b":
                zone["State"] = "impaired"

    edit(ctx, "ec2", "DescribeAvailabilityZones", impair)
    zones = run(ctx)["availability-zones"]
    assert zones.status == FAIL and zones.message == "us-west-2b is impaired"
    assert "us-west-2b" not in zones.fix


# -- instance type ---------------------------------------------------------------------------------
def test_a_type_not_offered_in_a_zone_names_it_and_suggests_others(ctx: AwsContext) -> None:
    def drop_b(parsed: dict[str, Any]) -> None:
        parsed["InstanceTypeOfferings"] = [o for o in parsed["InstanceTypeOfferings"]
                                           if o["Location"] != "us-west-2b"]

    edit(ctx, "ec2", "DescribeInstanceTypeOfferings", drop_b)
    check = run(ctx)["instance-type"]
    assert check.status == FAIL and check.message == "t3.large is not offered in us-west-2b"
    assert "us-west-2a, us-west-2c, us-west-2d" in check.fix


def test_a_type_offered_nowhere(ctx: AwsContext) -> None:
    edit(ctx, "ec2", "DescribeInstanceTypeOfferings", lambda parsed: parsed.update(InstanceTypeOfferings=[]))
    check = run(ctx)["instance-type"]
    assert check.status == FAIL and check.message == "t3.large is not offered in us-west-2a, us-west-2b"


def test_an_unknown_type_fails_and_the_vcpu_quota_is_skipped(ctx: AwsContext) -> None:
    checks = run(ctx, dev("compute.instance_type=t9.large"))
    assert checks["instance-type"].status == FAIL
    assert checks["instance-type"].message == "t9.large is not an EC2 instance type in us-west-2"
    assert checks["quota:vcpus"].status == SKIPPED and "instance-type" in checks["quota:vcpus"].message


def test_a_family_outside_the_standard_quota_is_noted(ctx: AwsContext) -> None:
    check = run(ctx, dev("compute.instance_type=p3.2xlarge"))["quota:vcpus"]
    assert check.status == OK and check.message.startswith("not checked: p3.2xlarge is outside")


# -- quotas ----------------------------------------------------------------------------------------
def test_vcpus_over_quota_fail_with_the_quota_code(ctx: AwsContext) -> None:
    launch(ctx, "c5.xlarge", 2)  # 8 vCPUs on demand
    launch(ctx, "m5.large", spot=True)  # spot: another quota
    launch(ctx, "p3.2xlarge")  # not a standard family: another quota
    asked = quotas(ctx, {"L-1216C47A": 9})
    check = run(ctx)["quota:vcpus"]
    assert "L-1216C47A" in asked
    assert check.status == FAIL
    assert check.message == (
        "Running On-Demand standard vCPUs: needs 10 of 9 (8 in use + 2 for 1 new t3.large)")
    assert "quota code L-1216C47A" in check.fix and "compute.instance_count" in check.fix
    # what the change adds is what counts
    assert run(ctx, new_nodes=0)["quota:vcpus"].status == OK


def test_spot_nodes_use_the_spot_quota(ctx: AwsContext) -> None:
    launch(ctx, "m5.large", spot=True)
    launch(ctx, "c5.xlarge")
    quotas(ctx, {"L-34B43A08": 8})
    check = run(ctx, dev("compute.spot=true", "compute.instance_count=3"))["quota:vcpus"]
    assert check.status == OK
    assert check.message == "Running standard Spot vCPUs: needs 8 of 8 (2 in use + 6 for 3 new t3.large)"


def test_vpcs_over_quota_unless_the_clusters_vpc_exists(ctx: AwsContext) -> None:
    def lower(parsed: dict[str, Any]) -> None:
        if parsed["Quota"]["QuotaCode"] == "L-F678F1CE":
            parsed["Quota"]["Value"] = 2.0

    edit(ctx, "service-quotas", "GetServiceQuota", lower)
    ec2 = ctx.client("ec2")
    ec2.create_vpc(CidrBlock="10.1.0.0/16")  # and moto's default VPC
    check = run(ctx)["quota:vpcs"]
    assert check.status == FAIL
    assert check.message == "VPCs per Region: needs 3 of 2 (2 in use + 1 for the cluster's VPC)"
    assert "L-F678F1CE" in check.fix and "delete unused VPCs" in check.fix
    other = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.1.0.0/16"]}])["Vpcs"][0]
    ec2.delete_vpc(VpcId=other["VpcId"])
    ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": CLUSTER_TAG, "Value": CLUSTER},
                                         {"Key": ADDRESS_TAG, "Value": "aws_vpc.main"}]}])
    check = run(ctx)["quota:vpcs"]
    assert check.status == OK
    assert check.message == "VPCs per Region: needs 2 of 2 (2 in use + 0 for the cluster's VPC)"


def _plan_creating(*addresses: str) -> Plan:
    return Plan("dev-proton", None, 0, "", "", (), tuple(
        Change(a, a.split(".")[0], CREATE, "does not exist yet") for a in addresses))


def test_quotas_count_what_the_plan_creates(ctx: AwsContext) -> None:
    # A VPC with only the cluster tag is no VPC discovery adopts (it plans as unmanaged and the
    # cluster's VPC is created): without a plan it is not counted as the cluster's, and with one
    # the plan says. What a killed run left (found and adopted) is no CREATE: no quota needed.
    quotas(ctx, {"L-F678F1CE": 2, "L-0263D0A3": 1, "L-53DA6B97": 1})
    ec2 = ctx.client("ec2")
    ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": CLUSTER_TAG, "Value": CLUSTER}]}])
    assert run(ctx)["quota:vpcs"].status == FAIL  # moto's default VPC + this one + the cluster's
    ec2.allocate_address(Domain="vpc")  # someone else's: the one EIP the quota allows
    creating = run(ctx, plan=_plan_creating("aws_vpc.main", "aws_eip.nat", "aws_lb.main"))
    assert creating["quota:vpcs"].message == ("VPCs per Region: needs 3 of 2 "
                                              "(2 in use + 1 for the cluster's VPC)")
    assert creating["quota:eips"].status == FAIL
    adopting = run(ctx, plan=_plan_creating())  # everything exists: a killed run's leftovers adopted
    assert adopting["quota:vpcs"].status == OK and adopting["quota:eips"].status == OK
    assert adopting["quota:vpcs"].message.endswith("(2 in use + 0 for the cluster's VPC)")
    assert adopting["quota:load-balancers"].message.endswith("+ 0 for the cluster's own)")


def test_eips_count_the_nat_gateways_the_cluster_still_needs(ctx: AwsContext) -> None:
    ec2 = ctx.client("ec2")
    ec2.allocate_address(Domain="vpc")
    ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": CLUSTER_TAG, "Value": CLUSTER},
                                                {"Key": ADDRESS_TAG, "Value": "aws_eip.nat"}]}])
    quotas(ctx, {"L-0263D0A3": 2})
    single = run(ctx)["quota:eips"]  # one NAT gateway, whose EIP exists already
    assert single.status == OK and single.message.startswith("EC2-VPC Elastic IPs: needs 2 of 2")
    per_az = run(ctx, dev("network.nat_gateway=per_az"))["quota:eips"]
    assert per_az.status == FAIL
    assert per_az.message == "EC2-VPC Elastic IPs: needs 3 of 2 (2 in use + 1 for 2 NAT gateway(s))"
    assert "network.nat_gateway: single" in per_az.fix and "L-0263D0A3" in per_az.fix


def test_nat_gateways_are_reported(ctx: AwsContext) -> None:
    assert run(ctx)["quota:nat-gateways"].message.startswith("NAT gateways per Availability Zone: 5")
    none = run(ctx, dev("network.nat_gateway=none"))["quota:nat-gateways"]
    assert none.status == OK and "no NAT gateways needed" in none.message


def test_load_balancers_over_quota(ctx: AwsContext) -> None:
    subnets = [s["SubnetId"] for s in ctx.client("ec2").describe_subnets()["Subnets"]][:2]
    ctx.client("elbv2").create_load_balancer(Name="someone-else", Subnets=subnets, Type="application")
    values = {"L-53DA6B97": 1.0, "L-69A177A2": 1.0}
    quotas(ctx, values)
    check = run(ctx)["quota:load-balancers"]
    assert check.status == FAIL
    assert check.message.startswith("Application Load Balancers per Region: needs 2 of 1")
    assert run(ctx, dev("load_balancer.type=network"))["quota:load-balancers"].status == OK
    ctx.client("elbv2").create_load_balancer(Name=f"{CLUSTER}-lb", Subnets=subnets, Type="application")
    values["L-53DA6B97"] = 2
    assert run(ctx)["quota:load-balancers"].status == OK  # the cluster's own is already counted


def test_quotas_service_quotas_cannot_answer_warns(ctx: AwsContext) -> None:
    refuse(ctx, "service-quotas", "GetServiceQuota", "AccessDeniedException")
    checks = run(ctx)
    for name in ("quota:vcpus", "quota:vpcs", "quota:eips", "quota:nat-gateways", "quota:load-balancers"):
        assert checks[name].status == WARN and "AccessDeniedException" in checks[name].message
        assert checks[name].message.startswith("could not check the ")
    assert checks["quota:vpcs"].message.startswith("could not check the VPCs per Region quota")
    assert "L-F678F1CE" in checks["quota:vpcs"].fix


# -- ami -------------------------------------------------------------------------------------------
def test_a_missing_ami_fails(ctx: AwsContext) -> None:
    check = run(ctx, dev("compute.ami=ami-0123456789abcdef0"))["ami"]
    assert check.status == FAIL
    assert check.message.startswith("ami-0123456789abcdef0 does not exist in us-west-2")


def test_a_given_ami_that_exists(ctx: AwsContext) -> None:
    ami = image(ctx)
    assert run(ctx, dev(f"compute.ami={ami}"))["ami"].status == OK
    edit(ctx, "ec2", "DescribeImages", lambda parsed: parsed["Images"][0].update(Architecture="arm64"))
    check = run(ctx, dev(f"compute.ami={ami}"))["ami"]
    assert check.status == FAIL and check.message == f"{ami} is arm64 but t3.large runs x86_64"


def test_an_ami_not_available_fails(ctx: AwsContext) -> None:
    ami = image(ctx)
    edit(ctx, "ec2", "DescribeImages", lambda parsed: parsed["Images"][0].update(State="deregistered"))
    check = run(ctx, dev(f"compute.ami={ami}"))["ami"]
    assert check.status == FAIL and check.message == f"{ami} is deregistered, not available"


def test_al2023_lookup_failure_fails_with_its_message(ctx: AwsContext) -> None:
    refuse(ctx, "ssm", "GetParameter", "ParameterNotFound")
    check = run(ctx)["ami"]
    assert check.status == FAIL and "cannot find the Amazon Linux 2023 AMI for t3.large" in check.message


# -- bucket, key pair, certificate -------------------------------------------------------------
def make_bucket(ctx: AwsContext, tags: dict[str, str] | None = None) -> None:
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    if tags:
        tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
        s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": tag_set})


def test_our_own_bucket_is_fine(ctx: AwsContext) -> None:
    make_bucket(ctx, {CLUSTER_TAG: CLUSTER, ADDRESS_TAG: "aws_s3_bucket.data", "Environment": "dev"})
    check = run(ctx)["bucket"]
    assert check.status == OK and "already ours" in check.message


def test_an_untagged_bucket_left_by_a_killed_run_is_ours(ctx: AwsContext) -> None:
    # CreateBucket done, PutBucketTagging never sent: the bucket kind adopts it, so preflight
    # must not refuse its name
    make_bucket(ctx)
    check = run(ctx)["bucket"]
    assert check.status == OK and "without tags" in check.message and "adopts it" in check.message


def test_someone_elses_bucket_fails(ctx: AwsContext) -> None:
    make_bucket(ctx, {"team": "analytics"})
    check = run(ctx)["bucket"]
    assert check.status == FAIL
    assert check.message == (f"{BUCKET}: the bucket exists and is not this cluster's "
                             '(tags {"team": "analytics"})')
    assert check.fix == "choose another storage.bucket_name"


def test_a_bucket_tagged_for_this_cluster_as_something_else_fails(ctx: AwsContext) -> None:
    # the bucket kind would refuse to adopt it, so preflight refuses its name as well
    make_bucket(ctx, {CLUSTER_TAG: CLUSTER})
    check = run(ctx)["bucket"]
    assert check.status == FAIL and "is tagged for this cluster as no byoc:address" in check.message


def test_another_clusters_bucket_fails(ctx: AwsContext) -> None:
    make_bucket(ctx, {CLUSTER_TAG: "prod"})
    check = run(ctx)["bucket"]
    assert check.status == FAIL and "belongs to byoc cluster prod" in check.message


def test_a_bucket_of_another_account_fails(ctx: AwsContext) -> None:
    refuse(ctx, "s3", "HeadBucket", "403")
    check = run(ctx)["bucket"]
    assert check.status == FAIL and check.message == f"{BUCKET}: the name is taken by another AWS account"


def test_the_log_bucket_name_is_checked_the_same_way(ctx: AwsContext) -> None:
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=f"{BUCKET}-logs", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_tagging(Bucket=f"{BUCKET}-logs", Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})
    checks = run(ctx)
    assert checks["bucket"].status == OK
    check = checks["log-bucket"]
    assert check.status == FAIL and check.message.startswith(f"{BUCKET}-logs: the bucket exists and is not")
    assert check.fix == "choose another storage.access_logs.bucket_name"
    # tagged for this cluster as its data bucket: not the log bucket
    s3.put_bucket_tagging(Bucket=f"{BUCKET}-logs", Tagging={"TagSet": [
        {"Key": CLUSTER_TAG, "Value": CLUSTER}, {"Key": ADDRESS_TAG, "Value": "aws_s3_bucket.data"}]})
    check = run(ctx)["log-bucket"]
    assert check.status == FAIL and "as aws_s3_bucket.data, not as aws_s3_bucket.logs" in check.message
    s3.put_bucket_tagging(Bucket=f"{BUCKET}-logs", Tagging={"TagSet": [
        {"Key": CLUSTER_TAG, "Value": CLUSTER}, {"Key": ADDRESS_TAG, "Value": "aws_s3_bucket.logs"}]})
    assert run(ctx)["log-bucket"].status == OK


def test_the_replication_destination_exists_is_versioned_and_elsewhere(ctx: AwsContext) -> None:
    spec = dev("storage.replication={destination_bucket_arn: arn:aws:s3:::dev-proton-dr}")
    check = run(ctx, spec)["replication"]
    assert check.status == FAIL and check.message == "dev-proton-dr: the destination bucket does not exist"
    dr = boto3.client("s3", region_name="us-east-1")
    dr.create_bucket(Bucket="dev-proton-dr")
    check = run(ctx, spec)["replication"]
    assert check.status == FAIL and "versioning is off" in check.message
    assert check.fix.startswith("aws s3api put-bucket-versioning --bucket dev-proton-dr")
    dr.put_bucket_versioning(Bucket="dev-proton-dr", VersioningConfiguration={"Status": "Enabled"})
    check = run(ctx, spec)["replication"]
    assert (check.status, check.message) == (OK, "dev-proton-dr: versioned, in us-east-1")
    # in the cluster's own region: allowed, but one outage takes both
    ctx.client("s3").create_bucket(Bucket="dev-proton-dr-west",
                                   CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    ctx.client("s3").put_bucket_versioning(Bucket="dev-proton-dr-west",
                                           VersioningConfiguration={"Status": "Enabled"})
    same = dev("storage.replication={destination_bucket_arn: arn:aws:s3:::dev-proton-dr-west}")
    assert run(ctx, same)["replication"].status == WARN
    # another account's bucket that this one may not read: a warning that says what to make sure of
    refuse(ctx, "s3", "GetBucketVersioning", "AccessDenied")
    check = run(ctx, spec)["replication"]
    assert check.status == WARN and "dev-proton-replication" in check.fix


def test_key_pair(ctx: AwsContext) -> None:
    check = run(ctx, dev("compute.ssh_key_name=ops"))["key-pair"]
    assert check.status == FAIL and check.message == "key pair 'ops' does not exist in us-west-2"
    assert check.fix == "create or import it in us-west-2, or remove compute.ssh_key_name"
    ctx.client("ec2").create_key_pair(KeyName="ops")
    assert run(ctx, dev("compute.ssh_key_name=ops"))["key-pair"].status == OK


def test_a_certificate_that_does_not_exist(ctx: AwsContext) -> None:
    check = run(ctx, dev(f"load_balancer.certificate_arn={CERT.format(region='us-west-2')}"))["certificate"]
    assert check.status == FAIL and "not found in us-west-2" in check.message


def test_a_certificate_not_issued_yet_then_issued(ctx: AwsContext) -> None:
    arn = ctx.client("acm").request_certificate(DomainName="proton.example.com")["CertificateArn"]
    check = run(ctx, dev(f"load_balancer.certificate_arn={arn}"))["certificate"]
    assert check.status == FAIL
    assert check.message == "proton.example.com: the certificate is PENDING_VALIDATION, not ISSUED"
    edit(ctx, "acm", "DescribeCertificate", lambda parsed: parsed["Certificate"].update(Status="ISSUED"))
    assert run(ctx, dev(f"load_balancer.certificate_arn={arn}"))["certificate"].status == OK


def test_a_certificate_in_another_region(ctx: AwsContext) -> None:
    check = run(ctx, dev(f"load_balancer.certificate_arn={CERT.format(region='us-east-1')}"))["certificate"]
    assert check.status == FAIL and "an ALB needs a certificate in its own region" in check.message


# -- nothing raises --------------------------------------------------------------------------------
QUOTAS = {"quota:vcpus", "quota:vpcs", "quota:eips", "quota:nat-gateways", "quota:load-balancers"}
BROKEN_BY = {
    "ec2": {"availability-zones", "instance-type", "quota:vcpus", "quota:vpcs", "quota:eips", "key-pair",
            "ami"},
    "s3": {"bucket", "log-bucket"},
    "ssm": {"ami"},
    "acm": {"certificate"},
    "elbv2": {"quota:load-balancers"},
    "service-quotas": QUOTAS,
}


@pytest.mark.parametrize("service", sorted(BROKEN_BY))
def test_a_service_refusing_everything_never_raises(ctx: AwsContext, service: str) -> None:
    if service != "service-quotas":
        quotas(ctx, {code: 100 for code in ("L-1216C47A", "L-0263D0A3", "L-53DA6B97")})
    ami = image(ctx) if service == "ec2" else None
    refuse(ctx, service, "*", "UnauthorizedOperation")
    spec = dev("compute.ssh_key_name=ops", f"load_balancer.certificate_arn={CERT.format(region='us-west-2')}",
               *([f"compute.ami={ami}"] if ami else []))
    checks = run(ctx, spec)
    assert checks["credentials"].status == OK
    broken = {n for n, c in checks.items() if "UnauthorizedOperation" in c.message}
    assert broken == BROKEN_BY[service]
    assert all(checks[n].status in {FAIL, WARN} and checks[n].fix for n in broken)


def test_an_unexpected_exception_becomes_a_fail(ctx: AwsContext) -> None:
    def hook(**kwargs: Any) -> None:
        raise RuntimeError("boom")

    on(ctx, "s3", "before-call.s3.HeadBucket", hook)
    check = run(ctx)["bucket"]
    assert check.status == FAIL and "RuntimeError: boom" in check.message
