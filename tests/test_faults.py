"""Transient AWS faults: with throttling and 5xx answers injected into a fraction of calls (and in
bursts), apply and destroy still converge; AWS's eventual-consistency errors are retried by byoc;
a non-retryable error stops only its branch, with a clear message."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from byoc.aws.calls import CONNECT_ATTEMPTS
from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.planner import PlanOptions
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import free_eips_of_deleted_nat_gateways
from tests.faults import FaultInjector, as_500

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_sdk_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff and adaptive rate limiter sleep for real: not in tests."""
    import botocore.retries.adaptive
    import botocore.retries.standard

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    monkeypatch.setattr(botocore.retries.adaptive.ClientRateLimiter, "on_sending_request",
                        lambda self, request, **kw: None)


def engine(tmp_path: Path, faults: FaultInjector, spec: str = "specs/dev.yaml", *sets: str) -> Engine:
    s = load_spec(str(ROOT / spec), sets)
    ctx = AwsContext(cluster=s.cluster_name, region=s.region, sleep=lambda d: None, poll_delay=0.01,
                     event_hooks=[("before-send", faults.hook)])
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    return Engine(s, ctx=ctx, backend=LocalBackend(tmp_path, s.cluster_name),
                  ami_resolver=lambda t: "ami-0123456789abcdef0")


def converge(eng: Engine, destroy: bool = False) -> None:
    options = PlanOptions(destroy=destroy, allow_data_loss=destroy)
    result = eng.apply(eng.plan(options))
    assert result.ok, [f"{f.address}: {f.error}" for f in result.failures]
    assert not eng.plan(options).has_changes


@pytest.mark.parametrize(("rate", "burst_every", "burst", "seed"), [(0.10, 0, 0, 1), (0.05, 40, 6, 2)])
def test_apply_and_destroy_converge_under_throttling_and_5xx(
    moto: None, tmp_path: Path, rate: float, burst_every: int, burst: int, seed: int
) -> None:
    faults = FaultInjector(rate=rate, seed=seed, burst_every=burst_every, burst=burst)
    eng = engine(tmp_path, faults)
    converge(eng)
    converge(eng, destroy=True)
    print(f"\nfaults: rate {rate}, bursts of {burst} every {burst_every}, seed {seed}: "
          f"{faults.total} injected in {faults.calls} calls {dict(faults.injected)}")
    assert faults.total >= 0.03 * faults.calls  # the faults did happen, and were retried
    # botocore's retry handler repeated the calls (byoc saw fewer calls than were sent), all but
    # the creates answered 5xx, which byoc repeats itself after looking by tag
    sdk_retries = faults.calls - sum(eng.ctx.calls.counts.values())
    assert 0.8 * faults.total <= sdk_retries <= faults.total


PROFILE_NOT_VISIBLE = ("Value (dev-proton-node) for parameter iamInstanceProfile.name is invalid. "
                       "Invalid IAM Instance Profile name")


def test_eventual_consistency_errors_are_retried(moto: None, tmp_path: Path) -> None:
    faults = FaultInjector(script={
        "RunInstances": [("InvalidParameterValue", PROFILE_NOT_VISIBLE)],  # new profile not visible yet
        "DeleteSecurityGroup": ["InvalidGroup.InUse", "DependencyViolation"],
        "DeleteSubnet": ["DependencyViolation", "DependencyViolation"],  # ENIs still draining
        "ReleaseAddress": ["InvalidNetworkInterfaceID.NotFound", "AuthFailure"],  # after NAT deletion
        "DeleteVpc": ["DependencyViolation"],
    })
    eng = engine(tmp_path, faults)
    converge(eng)
    converge(eng, destroy=True)
    assert faults.total == 8 and not any(faults.script.values()), faults.injected


@pytest.mark.parametrize("seed", [3])
def test_lost_answers_to_creates_never_make_duplicates(moto: None, tmp_path: Path, seed: int) -> None:
    """AWS did the work but the answer was a 500: the SDK must not repeat a create blindly; byoc
    looks by tag first. Convergence may take a second run (a step fails); duplicates never appear
    (discovery would refuse them)."""
    faults = FaultInjector(lost=0.04, seed=seed)
    eng = engine(tmp_path, faults)
    for destroy in (False, True):
        options = PlanOptions(destroy=destroy, allow_data_loss=destroy)
        failures: list[str] = []
        for _ in range(4):
            plan = eng.plan(options)  # raises on two resources tagged as one address
            if not plan.has_changes:
                break
            failures = [f"{f.address}: {f.error}" for f in eng.apply(plan).failures]
        left = [(c.address, c.action) for c in eng.plan(options).changes if c.action != "no-op"]
        assert not left, (left, failures)
    print(f"\nlost answers (seed {seed}): {faults.total} in {faults.calls} calls")
    assert faults.total > 5


def test_a_non_retryable_error_stops_its_branch_with_a_clear_message(moto: None, tmp_path: Path) -> None:
    faults = FaultInjector(script={"CreateNatGateway": ["UnauthorizedOperation"]})
    eng = engine(tmp_path, faults)
    result = eng.apply(eng.plan())
    assert not result.ok
    (failure,) = result.failures
    assert failure.address.startswith("aws_nat_gateway.")
    assert "CreateNatGateway failed: injected UnauthorizedOperation" in str(failure.error)
    assert "IAM permissions" in str(failure.error)  # what to do next
    assert faults.injected == {"CreateNatGateway:UnauthorizedOperation": 1}  # not retried
    state = eng.state()
    assert state is not None and "aws_vpc.main" in state.resources  # other branches went on
    assert result.skipped  # what needs the NAT gateway was not attempted
    converge(eng)  # the cause gone, the next run finishes the job


def test_the_sdk_repeats_a_5xx_read_but_not_a_5xx_create(moto: None) -> None:
    """botocore would repeat CreateVpc after a 500 (AWS may have made the VPC: a second one);
    byoc's needs-retry hook stops that, and leaves throttled creates and every read to the SDK."""
    from botocore.exceptions import ClientError

    faults = FaultInjector(script={"CreateVpc": ["InternalError", "InternalError"],
                                   "DescribeVpcs": ["InternalError"]})
    ctx = AwsContext(cluster="test", region="us-west-2", sleep=lambda d: None,
                     event_hooks=[("before-send", as_500(faults.hook))])
    ec2 = ctx.client("ec2")
    assert ec2.describe_vpcs()["ResponseMetadata"]["RetryAttempts"] == 1  # repeated by the SDK
    with pytest.raises(ClientError, match="InternalError"):
        ec2.create_vpc(CidrBlock="10.0.0.0/16")
    assert faults.script["CreateVpc"] == ["InternalError"]  # sent once, not repeated
    throttled = FaultInjector(script={"CreateVpc": ["RequestLimitExceeded"]})
    ctx = AwsContext(cluster="test", region="us-west-2", sleep=lambda d: None,
                     event_hooks=[("before-send", throttled.hook)])
    vpc = ctx.client("ec2").create_vpc(CidrBlock="10.1.0.0/16")
    assert vpc["ResponseMetadata"]["RetryAttempts"] == 1  # throttled: AWS did nothing, so repeat



def duplicates(cluster: str, region: str) -> dict[str, int]:
    """Addresses carrying more than one live AWS resource of ``cluster`` (counted by tag)."""
    import boto3

    from tests.killcli import owned

    aws = SimpleNamespace(client=lambda service: boto3.client(service, region_name=region))
    return {a: n for a, n in owned(aws, cluster).items() if n > 1}  # type: ignore[arg-type]


@pytest.mark.parametrize(("spec", "rate", "seed"), [
    ("specs/dev.yaml", 0.25, 11),
    ("specs/prod.yaml", 0.30, 7),
])
def test_sustained_faults_converge_in_one_run_without_duplicates(
    moto: None, tmp_path: Path, spec: str, rate: float, seed: int
) -> None:
    """A quarter to a third of all calls throttled or answered 5xx, for a whole apply and destroy
    on one engine: each converges in ONE run (sub-calls of creates are retried too, and the SDK's
    retry quota never runs dry), nothing is made twice."""
    faults = FaultInjector(rate=rate, seed=seed)
    eng = engine(tmp_path, faults, spec)
    converge(eng)
    assert duplicates(eng.spec.cluster_name, eng.spec.region) == {}
    converge(eng, destroy=True)
    print(f"\n{spec} at {rate:.0%} (seed {seed}): {faults.total} faults in {faults.calls} calls")
    # far more faults than botocore's retry quota (500 tokens, 14 per 5xx retry) would have allowed
    assert faults.injected["InternalError"] + faults.injected["ServiceUnavailable"] > 500 / 14


#: sub-calls of creates that are not safe to repeat blindly, and each one's answer when repeated
#: after AWS did the work: CreateRoute (not repeated by the SDK after a 5xx: byoc repeats it and
#: reads RouteAlreadyExists), AttachInternetGateway (Resource.AlreadyAssociated),
#: AddRoleToInstanceProfile (LimitExceeded), CreateAlias (AlreadyExistsException), AttachVolume
#: (VolumeInUse) — each checked by reading back before it counts as done
LOST_SUB_CALLS = {"CreateRoute": 2, "AttachInternetGateway": 1, "AddRoleToInstanceProfile": 1,
                  "CreateAlias": 1, "AttachVolume": 1}


def test_lost_answers_to_sub_calls_of_creates_are_looked_at_before_repeating(
    moto: None, tmp_path: Path
) -> None:
    faults = FaultInjector(lose=LOST_SUB_CALLS)
    eng = engine(tmp_path, faults, "specs/dev.yaml", "security.encryption.create_kms_key=true")
    converge(eng)  # in one run
    assert faults.injected == {f"{op}:lost": n for op, n in LOST_SUB_CALLS.items()}
    assert duplicates(eng.spec.cluster_name, eng.spec.region) == {}
    ec2 = eng.ctx.client("ec2")
    state = eng.state()
    assert state is not None
    rt = ec2.describe_route_tables(RouteTableIds=[state.resources["aws_route_table.public"].id])
    routes = [r for r in rt["RouteTables"][0]["Routes"] if r.get("Origin") == "CreateRoute"]
    assert [r["DestinationCidrBlock"] for r in routes] == ["0.0.0.0/0"]
    # an update's sub-call: ModifyVolume repeated by the SDK after its answer was lost (AWS would
    # answer IncorrectModificationState: the volume is being modified already)
    grow = FaultInjector(lose={"ModifyVolume": 1}, script={"ModifyVolume": ["IncorrectModificationState"]})
    converge(engine(tmp_path, grow, "specs/dev.yaml", "security.encryption.create_kms_key=true",
                    "compute.disk_size_gb=30"))
    assert grow.injected == {"ModifyVolume:lost": 1, "ModifyVolume:IncorrectModificationState": 1}


def test_retries_never_run_out_in_a_long_run(moto: None) -> None:
    """botocore's standard and adaptive modes stop retrying once a client's retry quota is spent
    (500 tokens, 14 per 5xx retry, given back only by calls that succeed at once): a long run under
    sustained 5xx would then fail at its next fault (RetryQuotaReached). byoc's clients keep their
    backoff and attempt limit, and no quota."""
    faults = FaultInjector()
    ctx = AwsContext(cluster="test", region="us-west-2", sleep=lambda d: None,
                     event_hooks=[("before-send", as_500(faults.hook))])
    ec2 = ctx.client("ec2")
    for _ in range(60):  # 120 retries: 1,680 tokens' worth, 14 given back per call
        faults.script["DescribeVpcs"] = ["InternalError", "InternalError"]
        assert ec2.describe_vpcs()["ResponseMetadata"]["RetryAttempts"] == 2
    assert faults.total == 120


# -- AWS cannot be reached, or no credentials: the real CLI, one message, within seconds ---------------
def cli(args: list[str], endpoint: str, credentials: bool = True) -> subprocess.CompletedProcess[str]:
    """``byoc ARGS`` in a subprocess pointed at ``endpoint``, with no AWS configuration but the
    environment's; it must return well before the minute a full retry budget would take."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-west-2", NO_COLOR="1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true")
    if credentials:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return subprocess.run([sys.executable, "-m", "byoc", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=45)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def errors(p: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in p.stdout + p.stderr
    return [line for line in p.stderr.splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("why", ["connection refused", "host name not found"])
def test_an_unreachable_endpoint_is_reported_once_naming_it(why: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}" if why == "connection refused" else "http://nonexistent.invalid:1"
    p = cli(["-v", "plan", "specs/dev.yaml"], endpoint)
    assert p.returncode == 1
    assert errors(p) == [f"Error: cannot reach AWS at {endpoint} ({why}): check AWS_ENDPOINT_URL, the "
                         "network (proxy, VPN, firewall) and the region (aws.region, AWS_REGION) "
                         "[EndpointConnectionError]"]
    # -v shows each retry as it happens; no call is tried more than CONNECT_ATTEMPTS times, and once
    # one has given up, the calls still to come fail without trying
    tries = re.findall(rf"aws (\S+ \S+) attempt (\d): cannot reach {re.escape(endpoint)} \({why}\); "
                       r"(trying again in [0-9.]+s|giving up)", p.stderr)
    assert tries and max(int(n) for _, n, _ in tries) == CONNECT_ATTEMPTS
    assert all(then.startswith("trying again") for _, n, then in tries if int(n) < CONNECT_ATTEMPTS)
    assert any(then == "giving up" for _, _, then in tries)


def test_preflight_tells_an_unreachable_endpoint_from_bad_credentials() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    p = cli(["preflight", "specs/dev.yaml"], endpoint)
    assert p.returncode == 1
    assert f"cannot reach AWS at {endpoint} (connection refused): GetCallerIdentity" in p.stdout
    assert "needs AWS to be reachable" in p.stdout
    assert "AWS_PROFILE" not in p.stdout and "working AWS credentials" not in p.stdout


def test_no_credentials_is_one_message_without_a_kind() -> None:
    p = cli(["plan", "specs/dev.yaml"], f"http://127.0.0.1:{closed_port()}", credentials=False)
    assert p.returncode == 1
    (error,) = errors(p)
    assert error.startswith("Error: no AWS credentials found: set AWS_PROFILE")
    assert error.endswith("(see README) [NoCredentialsError]")


def test_an_endpoint_found_unreachable_is_not_tried_again_for_a_while(
    moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from byoc.aws import calls
    from byoc.aws.errors import to_cloud_error

    monkeypatch.setattr(calls, "CONNECT_BACKOFF", 0.0)
    sent: list[str] = []

    def refused(request: Any = None, event_name: str = "", **kw: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])
        raise EndpointConnectionError(endpoint_url=request.url, error=ConnectionRefusedError(111, "refused"))

    ctx = AwsContext(cluster="test", region="us-west-2", sleep=lambda d: None,
                     event_hooks=[("before-send", refused)])
    ec2 = ctx.client("ec2")
    with pytest.raises(EndpointConnectionError) as first:
        ec2.describe_vpcs()
    assert sent == ["DescribeVpcs"] * CONNECT_ATTEMPTS
    assert to_cloud_error(first.value).message.startswith(
        "cannot reach AWS at https://ec2.us-west-2.amazonaws.com (connection refused)")
    with pytest.raises(EndpointConnectionError):  # other calls, other threads: at once, not sent
        ctx.together(ec2.describe_subnets, ec2.describe_security_groups)
    assert len(sent) == CONNECT_ATTEMPTS
    monkeypatch.setattr(calls, "UNREACHABLE_FOR", 0.0)  # a while later: tried again
    with pytest.raises(EndpointConnectionError):
        ec2.describe_subnets()
    assert sent[CONNECT_ATTEMPTS:] == ["DescribeSubnets"] * CONNECT_ATTEMPTS


def test_credentials_refused_by_one_service_are_reported_once_without_a_kind(
    moto: None, tmp_path: Path
) -> None:
    from byoc.errors import CloudError

    faults = FaultInjector(script={"DescribeVpcs": [
        ("AuthFailure", "AWS was not able to validate the provided access credentials")]})
    eng = engine(tmp_path, faults)
    with pytest.raises(CloudError) as err:
        eng.plan()
    assert str(err.value).startswith("DescribeVpcs failed: AWS was not able to validate the provided "
                                     "access credentials. The AWS credentials in use are not valid")
    assert str(err.value).endswith("choose others with AWS_PROFILE [AuthFailure]")


@pytest.mark.parametrize(("status", "parsed", "retried"), [
    (200, {"Vpcs": []}, False),
    (200, {"Error": {"Code": "ThrottlingException"}}, True),  # an error in a 200 answer (S3 does this)
    (503, {"Error": {"Code": "ServiceUnavailable"}}, True),
    (400, {"Error": {"Code": "RequestLimitExceeded"}}, True),
    (400, {"Error": {"Code": "InvalidParameterValue"}}, False),
])
def test_the_retry_handler_answers_a_plain_success_at_once_and_still_retries_errors(
    status: int, parsed: dict[str, Any], retried: bool
) -> None:
    """The needs-retry handler decides a success without botocore's retry context, and every
    error it retried before is retried still (a delay), whatever the status says."""
    ctx = AwsContext(cluster="c1", region="us-east-1")
    client = ctx.client("ec2")
    operation = client.meta.service_model.operation_model("DescribeVpcs")
    _, delay = client.meta.events.emit_until_response(
        "needs-retry.ec2.DescribeVpcs", response=(SimpleNamespace(status_code=status, headers={}), parsed),
        endpoint=None, operation=operation, attempts=1, caught_exception=None,
        request_dict={"context": {}})
    assert (delay is not None) is retried
    if retried:
        assert delay >= 0
