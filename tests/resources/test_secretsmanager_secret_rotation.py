"""aws_secretsmanager_secret_rotation against moto: create turns rotation on without rotating now
(the value stays, no AWSPENDING is left), discovery reads it from ListSecrets under the secret's
address, a new schedule is an update, delete cancels the rotation and leaves the secret and its value."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.resources.secretsmanager_secret_rotation import KIND

ADDR = "aws_secretsmanager_secret_rotation.admin"


@pytest.fixture
def world(ctx: AwsContext) -> dict[str, str]:
    sm = ctx.client("secretsmanager")
    tags = [
        {"Key": "byoc:cluster", "Value": "test"},
        {"Key": "byoc:address", "Value": "aws_secretsmanager_secret.admin"},
    ]
    secret = sm.create_secret(Name="byoc/test/proton-admin", SecretString="s3cret", Tags=tags)["ARN"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
        ],
    }
    role = ctx.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("rotation_lambda.py", "def lambda_handler(e, c): pass\n")
    fn = ctx.client("lambda").create_function(
        FunctionName="test-password-rotation",
        Runtime="python3.12",
        Role=role,
        Handler="rotation_lambda.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]
    return {"secret": secret, "function": fn}


def props(w: dict[str, str], **rules: Any) -> dict[str, Any]:
    return {
        "secret_id": w["secret"],
        "rotation_lambda_arn": w["function"],
        "rotation_rules": {
            "automatically_after_days": 30,
            "schedule_expression": None,
            "duration": None,
            **rules,
        },
        "rotate_immediately": False,
    }


def test_create_turns_rotation_on_without_rotating_now(ctx: AwsContext, world: dict[str, str]) -> None:
    sm = ctx.client("secretsmanager")
    before = sm.describe_secret(SecretId=world["secret"])["VersionIdsToStages"]
    live = KIND.create(ctx, ADDR, props(world))
    assert live.id == world["secret"] and live.props == props(world)
    assert KIND.discover(ctx) == [live]
    described = sm.describe_secret(SecretId=world["secret"])
    assert described["RotationEnabled"] and described["VersionIdsToStages"] == before  # no AWSPENDING left
    assert sm.get_secret_value(SecretId=world["secret"])["SecretString"] == "s3cret"


def test_a_new_schedule_is_an_update(ctx: AwsContext, world: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(world))
    want = props(world, automatically_after_days=None, schedule_expression="rate(10 days)", duration="3h")
    KIND.update(ctx, live, want, {"rotation_rules"})
    assert KIND.discover(ctx)[0].props == want


def test_delete_cancels_the_rotation_and_keeps_the_secret(ctx: AwsContext, world: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(world))
    KIND.delete(ctx, live)
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    sm = ctx.client("secretsmanager")
    assert not sm.describe_secret(SecretId=world["secret"]).get("RotationEnabled")
    assert sm.get_secret_value(SecretId=world["secret"])["SecretString"] == "s3cret"
