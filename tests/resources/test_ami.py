"""resolve_ami against moto's public SSM parameters; the architecture guess when EC2 cannot say."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.ami import PARAMETER_PREFIX, architecture, family_architecture, resolve_ami


def parameter(ctx: AwsContext, arch: str) -> str:
    return str(ctx.client("ssm").get_parameter(Name=PARAMETER_PREFIX + arch)["Parameter"]["Value"])


def on(ctx: AwsContext, service: str, event: str, hook: Any) -> None:
    ctx.client(service).meta.events.register_first(event, hook)


def calls_of(ctx: AwsContext, service: str, op: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    event = f"before-parameter-build.{service}.{op}"
    on(ctx, service, event, lambda params, **kw: calls.append(dict(params)))
    return calls


def fail(ctx: AwsContext, service: str, op: str, code: str) -> list[int]:
    calls: list[int] = []

    def hook(**kwargs: Any) -> None:
        calls.append(1)
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    on(ctx, service, f"before-call.{service}.{op}", hook)
    return calls


def test_x86_and_graviton_types_get_their_al2023(ctx: AwsContext) -> None:
    lookups = calls_of(ctx, "ec2", "DescribeInstanceTypes")
    x86, arm = resolve_ami(ctx, "c5.2xlarge"), resolve_ami(ctx, "c6g.2xlarge")
    assert x86 == parameter(ctx, "x86_64") and arm == parameter(ctx, "arm64")
    assert x86.startswith("ami-") and x86 != arm
    assert lookups == [{"InstanceTypes": ["c5.2xlarge"]}, {"InstanceTypes": ["c6g.2xlarge"]}]  # one each


def test_unknown_type_falls_back_to_the_family_name(ctx: AwsContext) -> None:
    # moto (like AWS) answers InvalidInstanceType for a type it does not know
    assert architecture(ctx, "c9g.medium") == "arm64"
    assert architecture(ctx, "c9.medium") == "x86_64"


def test_failed_lookup_falls_back_to_the_family_name(ctx: AwsContext) -> None:
    calls = fail(ctx, "ec2", "DescribeInstanceTypes", "UnauthorizedOperation")
    assert resolve_ami(ctx, "m7g.large") == parameter(ctx, "arm64")
    assert resolve_ami(ctx, "m7i.large") == parameter(ctx, "x86_64")
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("c6g.large", "arm64"), ("m7g.xlarge", "arm64"), ("r8g.large", "arm64"), ("t4g.micro", "arm64"),
        ("c7gn.large", "arm64"), ("m6gd.large", "arm64"), ("x2gd.large", "arm64"), ("im4gn.large", "arm64"),
        ("g5g.xlarge", "arm64"), ("a1.large", "arm64"),
        ("c5.2xlarge", "x86_64"), ("t3.large", "x86_64"), ("g5.xlarge", "x86_64"),
        ("m7i-flex.large", "x86_64"), ("m5a.large", "x86_64"), ("inf2.xlarge", "x86_64"),
        ("u-6tb1.metal", "x86_64"),
    ],
)
def test_family_architecture(instance_type: str, arch: str) -> None:
    assert family_architecture(instance_type) == arch


def test_missing_parameter_asks_for_compute_ami(ctx: AwsContext) -> None:
    fail(ctx, "ssm", "GetParameter", "ParameterNotFound")
    with pytest.raises(CloudError, match=r"Set compute\.ami") as err:
        resolve_ami(ctx, "c5.large")
    assert err.value.code == "ParameterNotFound"


def test_other_ssm_errors_are_readable(ctx: AwsContext) -> None:
    calls = fail(ctx, "ssm", "GetParameter", "AccessDeniedException")
    with pytest.raises(CloudError, match=r"compute\.ami") as err:
        resolve_ami(ctx, "c5.large")
    assert err.value.code == "AccessDeniedException" and len(calls) == 1
