"""Preflight: read-only checks before apply that catch what makes a deploy fail half-way —
credentials, zones, instance type, service quotas, AMI, bucket name, replication destination, key pair,
certificate.

Every check answers a ``Check``; none raises. AWS errors become that check's fail (or warn).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, is_unreachable, to_cloud_error, unreachable_message
from byoc.aws.tags import CLUSTER_TAG, tags_dict
from byoc.operations import quotas
from byoc.operations.checks import FAIL, OK, SKIPPED, WARN, Check, Skip, reason, type_info, vcpus
from byoc.plan import CREATE, Plan
from byoc.resources.ami import resolve_ami
from byoc.resources.s3_bucket import BUCKET_ADDRESS, LOGS_ADDRESS, foreign, name_field
from byoc.spec import Spec

__all__ = ["FAIL", "OK", "ORDER", "SKIPPED", "WARN", "Check", "failed", "nodes_added", "run_preflight"]

#: the checks, in the order ``run_preflight`` reports them
ORDER = (
    "credentials", "availability-zones", "instance-type", "quota:vcpus", "quota:vpcs", "quota:eips",
    "quota:nat-gateways", "quota:load-balancers", "ami", "bucket", "log-bucket", "replication", "key-pair",
    "certificate",
)
CREDENTIAL_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "SignatureDoesNotMatch", "InvalidToken", "RequestExpired",
})
REGION_CODES = frozenset(
    {"AuthFailure", "UnrecognizedClientException", "OptInRequired", "InvalidClientTokenId"}
)
CREDENTIALS_FIX = (
    "configure AWS credentials: export AWS_PROFILE=<profile> (or run `aws configure`, or "
    "`aws sso login` for an SSO profile), or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; for a "
    'trial without AWS, start the sandbox: eval "$(byoc sandbox start)"'
)


def failed(checks: list[Check]) -> bool:
    """True when any check failed."""
    return any(c.status == FAIL for c in checks)


def nodes_added(plan: Plan) -> int:
    """How many instances ``plan`` launches on top of those running: its created ``aws_instance``s
    (a replaced node is stopped before its successor starts, so it adds none)."""
    return sum(1 for c in plan.changes if c.kind == "aws_instance" and c.action == CREATE)


def run_preflight(
    ctx: AwsContext, spec: Spec, *, new_nodes: int | None = None, plan: Plan | None = None
) -> list[Check]:
    """Every check of ``ORDER`` for ``spec`` in ``ctx``'s account and region (the spec's region);
    ``new_nodes`` is how many instances the change adds (default: ``plan``'s, else the spec's
    instance_count). With ``plan``, the quota checks count what it creates (what a killed run
    left behind is adopted and needs no new quota)."""
    if new_nodes is None and plan is not None:
        new_nodes = nodes_added(plan)
    nodes = spec.instance_count if new_nodes is None else max(0, new_nodes)
    made = Counter(c.kind for c in plan.changes if c.action == CREATE) if plan is not None else None

    def creates(kind: str) -> int | None:
        return None if made is None else made[kind]

    later: dict[str, Callable[[], Check]] = {
        "instance-type": lambda: _instance_type(ctx, spec),
        "quota:vcpus": lambda: quotas.quota_vcpus(ctx, spec, nodes),
        "quota:vpcs": lambda: quotas.quota_vpcs(ctx, spec, creates("aws_vpc")),
        "quota:eips": lambda: quotas.quota_eips(ctx, spec, creates("aws_eip")),
        "quota:nat-gateways": lambda: quotas.quota_nat(ctx, spec),
        "quota:load-balancers": lambda: quotas.quota_lbs(ctx, spec, creates("aws_lb")),
        "ami": lambda: _ami(ctx, spec),
        "bucket": lambda: _bucket(ctx, spec, "bucket", BUCKET_ADDRESS),
        "log-bucket": lambda: _bucket(ctx, spec, "log-bucket", LOGS_ADDRESS),
        "replication": lambda: _replication(ctx, spec),
        "key-pair": lambda: _key_pair(ctx, spec),
        "certificate": lambda: _certificate(ctx, spec),
    }
    with ctx.discovery_pass(), ThreadPoolExecutor(max_workers=6, thread_name_prefix="preflight") as pool:
        first = [pool.submit(_guard, "credentials", lambda: _credentials(ctx)),
                 pool.submit(_guard, "availability-zones", lambda: _zones(ctx, spec))]
        creds, zones = (f.result() for f in first)
        if creds.status == FAIL:
            reason = ("needs AWS to be reachable (see the credentials check)" if creds.message.startswith(
                "cannot reach AWS") else "needs working AWS credentials (see the credentials check)")
            return [creds, *(Check(name, SKIPPED, reason) for name in ORDER[1:])]
        if zones.status == FAIL and not _region_usable(ctx):
            reason = f"needs a usable region; {spec.region} is not (see the availability-zones check)"
            return [creds, zones, *(Check(name, SKIPPED, reason) for name in later)]
        futures = [pool.submit(_guard, name, check) for name, check in later.items()]
        return [creds, zones, *(f.result() for f in futures)]


# -- plumbing --------------------------------------------------------------------------------------
def _guard(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; whatever it raises becomes its fail (or its skip)."""
    try:
        return check()
    except Skip as exc:
        return Check(name, SKIPPED, str(exc))
    except Exception as exc:  # a check never raises, whatever AWS or botocore does
        err = to_cloud_error(exc)
        fix = "fix the cause above and run again"
        if err.code in {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}:
            fix = "allow the read-only calls preflight makes to the credentials in use, and run again"
        return Check(name, FAIL, f"the check could not run: {err}", fix)


def _join(items: Any) -> str:
    return ", ".join(sorted(items)) or "none"


def _identity(ctx: AwsContext) -> dict[str, Any]:
    return ctx.memo("sts", "preflight:identity", lambda: dict(ctx.client("sts").get_caller_identity()))


def _zone_answer(ctx: AwsContext) -> dict[str, str] | Exception:
    """{zone name: state} of the region's zones, or the error DescribeAvailabilityZones raised."""
    def fetch() -> dict[str, str] | Exception:
        try:
            zones = ctx.client("ec2").describe_availability_zones()["AvailabilityZones"]
        except Exception as exc:  # kept as the answer, reported by the zones check
            return exc
        return {z["ZoneName"]: str(z.get("State", "")) for z in zones
                if z.get("ZoneType", "availability-zone") == "availability-zone"}
    return ctx.memo("ec2", "preflight:zones", fetch)


def _region_usable(ctx: AwsContext) -> bool:
    """False when the region answers nothing at all (unknown, not enabled, unreachable); an error
    such as a missing permission leaves the other checks to try for themselves."""
    answer = _zone_answer(ctx)
    return not isinstance(answer, Exception) or (
        isinstance(answer, ClientError) and error_code(answer) not in REGION_CODES)


# -- the checks ------------------------------------------------------------------------------------
def _credentials(ctx: AwsContext) -> Check:
    try:
        who = _identity(ctx)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) or type(exc).__name__
        if is_unreachable(exc):  # the network or the endpoint, not the credentials
            message = unreachable_message(exc)
            where, _, fix = message.partition(": check ")
            return Check("credentials", FAIL, f"{where}: GetCallerIdentity could not be sent", f"check {fix}")
        if code in {"NoCredentialsError", "PartialCredentialsError"}:
            return Check("credentials", FAIL, f"no AWS credentials found ({reason(exc)})", CREDENTIALS_FIX)
        if code in CREDENTIAL_CODES:
            return Check("credentials", FAIL, f"the AWS credentials are not valid ({reason(exc)})",
                         f"renew or replace them; {CREDENTIALS_FIX}")
        return Check("credentials", FAIL, f"GetCallerIdentity failed ({reason(exc)})",
                     f"check network access to AWS STS and the credentials; {CREDENTIALS_FIX}")
    return Check("credentials", OK, f"account {who.get('Account')} as {who.get('Arn')}")


def _zones(ctx: AwsContext, spec: Spec) -> Check:
    name, region = "availability-zones", spec.region
    zones = _zone_answer(ctx)
    if isinstance(zones, Exception):
        if _region_usable(ctx):
            raise zones
        return Check(name, FAIL, f"cannot use region {region}: {reason(zones)}",
                     f"enable {region} for the account (AWS console → Account → AWS Regions) or choose "
                     "another aws.region")
    available = [z for z, state in zones.items() if state == "available"]
    problems = [f"{z} is not a zone of {region}" if z not in zones else f"{z} is {zones[z]}"
                for z in spec.availability_zones if zones.get(z) != "available"]
    if problems:
        return Check(name, FAIL, "; ".join(problems),
                     f"set aws.availability_zones to zones available in {region}: {_join(available)}")
    return Check(name, OK, f"{_join(spec.availability_zones)} available in {region}")


def _instance_type(ctx: AwsContext, spec: Spec) -> Check:
    name, itype = "instance-type", str(spec.data["compute"]["instance_type"])
    info = type_info(ctx, itype)
    if info is None:
        return Check(name, FAIL, f"{itype} is not an EC2 instance type in {spec.region}",
                     "set compute.instance_type to a type such as t3.large or c5.2xlarge")
    pages = ctx.client("ec2").get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [itype]}])
    offered = {o["Location"] for page in pages for o in page["InstanceTypeOfferings"]}
    zones = _zone_answer(ctx)  # zones missing from the region are the zones check's to report
    missing = [z for z in spec.availability_zones
               if (isinstance(zones, Exception) or z in zones) and z not in offered]
    if missing:
        return Check(name, FAIL, f"{itype} is not offered in {_join(missing)}",
                     f"choose zones that offer it ({_join(offered)}) or another compute.instance_type")
    here = [z for z in spec.availability_zones if z in offered]
    return Check(name, OK, f"{itype} ({vcpus(info)} vCPUs) is offered in {_join(here)}")


def _ami(ctx: AwsContext, spec: Spec) -> Check:
    compute = spec.data["compute"]
    itype, ami = str(compute["instance_type"]), compute.get("ami")
    if not ami:
        try:
            found = resolve_ami(ctx, itype)
        except Exception as exc:  # resolve_ami raises CloudError with the fix in it
            return Check("ami", FAIL, str(to_cloud_error(exc)), "set compute.ami to an AMI id of the region")
        return Check("ami", OK, f"the current Amazon Linux 2023 for {itype} is {found}")
    try:
        images = ctx.client("ec2").describe_images(ImageIds=[ami])["Images"]
    except ClientError as exc:
        if not (error_code(exc) or "").startswith("InvalidAMIID"):
            raise
        images = []
    fix = f"set compute.ami to an available AMI of {spec.region}, or remove it for Amazon Linux 2023"
    if not images:
        return Check("ami", FAIL, f"{ami} does not exist in {spec.region} (or is not shared with you)", fix)
    image = images[0]
    if image.get("State") != "available":
        return Check("ami", FAIL, f"{ami} is {image.get('State')}, not available", fix)
    info = type_info(ctx, itype)
    archs = ((info or {}).get("ProcessorInfo") or {}).get("SupportedArchitectures") or []
    arch = image.get("Architecture")
    if arch and archs and arch not in archs:
        return Check("ami", FAIL, f"{ami} is {arch} but {itype} runs {_join(archs)}",
                     f"choose an AMI for {_join(archs)} or an instance type for {arch}")
    return Check("ami", OK, f"{ami} ({image.get('Name') or 'no name'}) is available")


def _bucket(ctx: AwsContext, spec: Spec, check: str, address: str) -> Check:
    """The name of the bucket at ``address`` (the data or the log bucket) is free, or the bucket is
    this cluster's by the bucket kind's own rule (``s3_bucket.foreign``): tagged for it, or untagged
    (a run killed before tagging it)."""
    storage, cluster, field = spec.data["storage"], spec.cluster_name, name_field(address)
    named = storage if address == BUCKET_ADDRESS else storage["access_logs"]
    bucket = str(named["bucket_name"])
    s3 = ctx.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return Check(check, OK, f"{bucket}: the name is free")
        if code in {"403", "AccessDenied", "Forbidden"}:
            return Check(check, FAIL, f"{bucket}: the name is taken by another AWS account",
                         f"choose another {field} (bucket names are global)")
        raise
    try:
        tags = tags_dict(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    except ClientError as exc:
        if error_code(exc) != "NoSuchTagSet":
            raise
        tags = {}
    why = foreign(tags, cluster, address)
    if why is None and tags:
        return Check(check, OK, f"{bucket}: already ours (tagged {CLUSTER_TAG}={cluster})")
    if why is None:
        return Check(check, OK, f"{bucket}: exists in this account without tags (a run stopped "
                     "before tagging it); apply adopts it and writes its tags")
    return Check(check, FAIL, f"{bucket}: the bucket exists and {why}", f"choose another {field}")


def _replication(ctx: AwsContext, spec: Spec) -> Check:
    """``storage.replication``'s destination exists and is versioned (S3 refuses the replication
    configuration otherwise); in the cluster's own region it is a warning (one outage takes both)."""
    conf = spec.data["storage"].get("replication")
    if not conf:
        return Check("replication", SKIPPED, "storage.replication is not set")
    field = "storage.replication.destination_bucket_arn"
    bucket = str(conf["destination_bucket_arn"]).rsplit(":", 1)[-1]
    s3 = ctx.client("s3")
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        region = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except ClientError as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return Check("replication", FAIL, f"{bucket}: the destination bucket does not exist",
                         f"create it, versioned, in another region or account, or fix {field}")
        if code in {"403", "AccessDenied", "Forbidden"}:
            return Check("replication", WARN, f"{bucket}: cannot read its versioning or region ({code}; "
                         "another account's bucket?)",
                         f"make sure it is versioned and its bucket policy lets the role "
                         f"{spec.cluster_name}-replication replicate into it")
        raise
    if status != "Enabled":
        return Check("replication", FAIL, f"{bucket}: versioning is {status or 'off'}; S3 replicates only "
                     "into a versioned bucket",
                     f"aws s3api put-bucket-versioning --bucket {bucket} "
                     "--versioning-configuration Status=Enabled")
    if region == spec.region:
        return Check("replication", WARN, f"{bucket}: versioned, but in {region} like the cluster: one "
                     "regional outage takes both copies", "replicate to a bucket in another region")
    return Check("replication", OK, f"{bucket}: versioned, in {region}")


def _key_pair(ctx: AwsContext, spec: Spec) -> Check:
    key = spec.data["compute"].get("ssh_key_name")
    if not key:
        return Check("key-pair", SKIPPED, "compute.ssh_key_name is not set")
    try:
        ctx.client("ec2").describe_key_pairs(KeyNames=[key])
    except ClientError as exc:
        if error_code(exc) != "InvalidKeyPair.NotFound":
            raise
        return Check("key-pair", FAIL, f"key pair {key!r} does not exist in {spec.region}",
                     f"create or import it in {spec.region}, or remove compute.ssh_key_name")
    return Check("key-pair", OK, f"key pair {key!r} exists in {spec.region}")


_CERT_ARN = re.compile(r"^arn:[a-z-]+:acm:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):certificate/")


def _certificate(ctx: AwsContext, spec: Spec) -> Check:
    arn = spec.data["load_balancer"].get("certificate_arn")
    if not arn:
        return Check("certificate", SKIPPED, "load_balancer.certificate_arn is not set")
    parts = _CERT_ARN.match(arn)
    if parts is None:
        return Check("certificate", FAIL, f"{arn} is not an ACM certificate ARN",
                     "set load_balancer.certificate_arn to the ARN shown in the ACM console")
    if parts["region"] != spec.region:
        return Check("certificate", FAIL, f"the certificate is in {parts['region']}, the cluster in "
                     f"{spec.region}: an ALB needs a certificate in its own region",
                     f"request or import the certificate in {spec.region} (ACM) and use that ARN")
    account = str(_identity(ctx).get("Account") or "")
    if account and parts["account"] != account:
        return Check("certificate", FAIL, f"the certificate belongs to account {parts['account']}, "
                     f"not {account}", f"import the certificate into account {account} in {spec.region}")
    try:
        cert = ctx.client("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as exc:
        if error_code(exc) not in {"ResourceNotFoundException", "ValidationException"}:
            raise
        return Check("certificate", FAIL, f"{arn} not found in {spec.region} ({reason(exc)})",
                     "check load_balancer.certificate_arn against the ACM console")
    status = cert.get("Status")
    if status != "ISSUED":
        domain = cert.get("DomainName")
        return Check("certificate", FAIL, f"{domain}: the certificate is {status}, not ISSUED",
                     "finish its validation in ACM (or renew it) and run again")
    return Check("certificate", OK, f"{cert.get('DomainName')}: ISSUED in {spec.region}")
