"""aws_lambda_function and aws_lambda_permission against moto (Lambda without Docker): the zip comes
from the registered package and its hash is read back; create = discover; a repeated create adopts;
configuration, code, concurrency and tags change in place; the permission is found again by its
statement; deletes are idempotent; a plan's hash that is not this byoc's code is refused."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources import lambda_function
from byoc.resources.lambda_function import KIND, code_hash, register_package
from byoc.resources.lambda_permission import KIND as PERMISSION

ADDR = "aws_lambda_function.rotation"
NAME = "test-password-rotation"


def _zip(text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("rotation_lambda.py", (1980, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


CODE = {
    "v1": _zip("def lambda_handler(e, c): return 1\n"),
    "v2": _zip("def lambda_handler(e, c): return 2\n"),
}


@pytest.fixture
def world(ctx: AwsContext, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(lambda_function, "PACKAGES", {})
    register_package("test-v1", lambda region: CODE["v1"])
    register_package("test-v2", lambda region: CODE["v2"])
    iam = ctx.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
        ],
    }
    role = iam.create_role(RoleName="test-rotation", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    ec2 = ctx.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="fn", Description="fn", VpcId=vpc)["GroupId"]
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName="test-dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"role": role, "subnet": subnet, "sg": sg, "dlq": dlq}


def props(w: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "function_name": NAME,
        "description": "rotates",
        "role": w["role"],
        "handler": "rotation_lambda.lambda_handler",
        "runtime": "python3.12",
        "timeout": 900,
        "memory_size": 256,
        "reserved_concurrent_executions": 1,
        "tracing_config": {"mode": "Active"},
        "vpc_config": {"subnet_ids": [w["subnet"]], "security_group_ids": [w["sg"]]},
        "dead_letter_config": {"target_arn": w["dlq"]},
        "code_signing_config_arn": None,
        "source_code_hash": code_hash(CODE["v1"]),
        "package": "test-v1",
        "tags": {"Name": NAME, "byoc:cluster": "test", "byoc:address": ADDR},
        **over,
    }


def test_create_equals_discover(ctx: AwsContext, world: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, props(world))
    assert live.props == props(world)
    assert live.attrs["arn"].endswith(f":function:{NAME}")
    assert KIND.discover(ctx) == [live]
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []


def test_a_repeated_create_adopts_and_brings_it_in_line(ctx: AwsContext, world: dict[str, Any]) -> None:
    first = KIND.create(ctx, ADDR, props(world, reserved_concurrent_executions=None))
    again = KIND.create(ctx, ADDR, props(world))  # a run that stopped before PutFunctionConcurrency
    assert again.id == first.id and KIND.discover(ctx)[0].props["reserved_concurrent_executions"] == 1


def test_code_configuration_and_tags_change_in_place(ctx: AwsContext, world: dict[str, Any]) -> None:
    live = KIND.create(ctx, ADDR, props(world))
    want = props(
        world,
        timeout=600,
        source_code_hash=code_hash(CODE["v2"]),
        package="test-v2",
        tags={**props(world)["tags"], "team": "a"},
    )
    KIND.update(ctx, live, want, {"timeout", "source_code_hash", "package", "tags"})
    assert KIND.discover(ctx)[0].props == want


def test_a_hash_that_is_not_this_byocs_code_is_refused(ctx: AwsContext, world: dict[str, Any]) -> None:
    with pytest.raises(CloudError, match="source_code_hash"):
        KIND.create(ctx, ADDR, props(world, source_code_hash=code_hash(b"other")))
    with pytest.raises(CloudError, match="no code package"):
        KIND.create(ctx, ADDR, props(world, package="gone"))


def test_the_permission_is_found_again_and_deletes_are_idempotent(
    ctx: AwsContext, world: dict[str, Any]
) -> None:
    fn = KIND.create(ctx, ADDR, props(world))
    secret = "arn:aws:secretsmanager:us-west-2:123456789012:secret:byoc/test/proton-admin-AbCdEf"
    perm = {
        "function_name": NAME,
        "statement_id": "SecretsManagerRotation",
        "action": "lambda:InvokeFunction",
        "principal": "secretsmanager.amazonaws.com",
        "source_arn": secret,
        "source_account": "123456789012",
    }
    live = PERMISSION.create(ctx, "aws_lambda_permission.rotation", perm)
    assert live.id == f"{NAME}/SecretsManagerRotation"
    assert PERMISSION.discover(ctx) == [live]
    assert PERMISSION.create(ctx, "aws_lambda_permission.rotation", perm) == live  # a rerun: the same
    PERMISSION.delete(ctx, live)
    PERMISSION.delete(ctx, live)
    assert PERMISSION.discover(ctx) == []
    KIND.delete(ctx, fn)
    KIND.delete(ctx, fn)
    assert KIND.discover(ctx) == []
