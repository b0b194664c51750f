"""The admin password's scheduled rotation (``security.password_rotation``): Secrets Manager's rotation
of the secret through a Lambda function of byoc's own (templates/rotation_lambda.py), with its log
group, role, security group (HTTPS out only), dead-letter queue and the permission that lets Secrets
Manager invoke it. Also the function's zip, built here deterministically so its hash is stable."""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import io
import zipfile
from typing import Any

from byoc.blueprint.base import Builder, created_key_arn, rotation_enabled, rotation_function_name
from byoc.blueprint.iam import ROTATION_POLICY
from byoc.blueprint.network import Network
from byoc.blueprint.policy import document, statement
from byoc.blueprint.storage import Storage
from byoc.model import Ref, Sorted
from byoc.userdata import tool_command

#: the name the zip is known by (``aws_lambda_function``'s byoc-only ``package`` prop)
PACKAGE = "password-rotation"
HANDLER = "rotation_lambda.lambda_handler"
RUNTIME = "python3.12"
#: seconds one rotation step may run: a step goes through every node, one at a time
TIMEOUT = 900
#: what apply.sh holds in place of the ARN and version id (the function fills them in; the same
#: values are in templates/rotation_lambda.py, tested equal)
ARN_PLACEHOLDER = "arn:aws:secretsmanager:us-east-1:000000000000:secret:byoc-rotation-placeholder"
VERSION_PLACEHOLDER = "BYOC_VERSION_ID"
#: a fixed time for every zip entry (zip's epoch): the same code gives the same bytes and hash
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def rotation_log_group_name(cluster: str) -> str:
    """The log group Lambda writes the function's logs to (its fixed ``/aws/lambda/<name>``)."""
    return f"/aws/lambda/{rotation_function_name(cluster)}"


@functools.cache
def package_files(region: str) -> tuple[tuple[str, bytes], ...]:
    """The zip's files, in order: the function and the command it sends to a node."""
    code = importlib.resources.files("byoc").joinpath("templates/rotation_lambda.py").read_bytes()
    apply = tool_command(ARN_PLACEHOLDER, region, "--version-id", VERSION_PLACEHOLDER).encode()
    return (("rotation_lambda.py", code), ("apply.sh", apply))


@functools.cache
def package_zip(region: str) -> bytes:
    """The function's zip: fixed timestamps and modes, fixed order, so the same byoc always makes
    the same bytes (a no-op plan stays empty)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in package_files(region):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, data)
    return out.getvalue()


def source_code_hash(region: str) -> str:
    """base64(sha256(zip)): Terraform's ``source_code_hash`` and Lambda's ``CodeSha256``."""
    return base64.b64encode(hashlib.sha256(package_zip(region)).digest()).decode()


def rotation_rules(conf: dict[str, Any]) -> dict[str, Any]:
    expression = conf.get("schedule_expression")
    return {
        "automatically_after_days": None if expression else int(conf.get("schedule_days") or 30),
        "schedule_expression": expression or None,
        "duration": conf.get("duration") or None,
    }


def build_rotation(b: Builder, net: Network, storage: Storage) -> None:
    """Everything the scheduled rotation needs, when the spec turns it on."""
    if not rotation_enabled(b.spec):
        return
    conf = b.spec.data["security"]["password_rotation"]
    name = rotation_function_name(b.cluster)
    key = created_key_arn(b.spec)
    group_name = rotation_log_group_name(b.cluster)
    group = b.add("aws_cloudwatch_log_group", "rotation", None, {
        "name": group_name,
        "retention_in_days": b.spec.data["monitoring"]["log_retention_days"],
        "kms_key_id": key,
    }, label=group_name)
    queue = b.add("aws_sqs_queue", "rotation_dlq", None, {
        "name": f"{name}-dlq",
        "kms_master_key_id": key,
        "sqs_managed_sse_enabled": key is None,
        "message_retention_seconds": 1209600,
    })
    queue_arn = f"arn:{b.partition}:sqs:{b.region}:{b.facts.account}:{name}-dlq"
    sg = b.add("aws_security_group", "rotation", None, {
        "name": name,
        "description": f"byoc {b.cluster}: password rotation function",
        "vpc_id": Ref(net.vpc),
        "ingress": [],
        "egress": [{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_block": "0.0.0.0/0",
                    "description": "HTTPS to Secrets Manager and SSM through the NAT gateway"}],
    })
    role = _role(b, storage, group, queue, storage.kms_key)
    function = b.add("aws_lambda_function", "rotation", None, {
        "function_name": name,
        "description": f"byoc {b.cluster}: rotates the Proton admin password on the nodes",
        "role": Ref(role, "arn"),
        "handler": HANDLER,
        "runtime": RUNTIME,
        "timeout": TIMEOUT,
        "memory_size": 256,
        "reserved_concurrent_executions": 1,
        "tracing_config": {"mode": "Active"},
        "vpc_config": {"subnet_ids": Sorted(tuple(Ref(s) for s in net.private.values())),
                       "security_group_ids": [Ref(sg)]},
        # the queue's ARN spelled out (AWS's is exactly this): known in the plan, for policy tools
        "dead_letter_config": {"target_arn": queue_arn},
        "code_signing_config_arn": conf.get("code_signing_config_arn") or None,
        "source_code_hash": source_code_hash(b.region),
        "package": PACKAGE,
    }, depends_on=(group, queue))
    permission = b.add("aws_lambda_permission", "rotation", None, {
        "function_name": Ref(function, "function_name"),
        "statement_id": "SecretsManagerRotation",
        "action": "lambda:InvokeFunction",
        "principal": "secretsmanager.amazonaws.com",
        "source_arn": Ref(storage.secret, "arn"),
        "source_account": b.facts.account,
    }, tagged=False)
    b.add("aws_secretsmanager_secret_rotation", "admin", None, {
        "secret_id": Ref(storage.secret, "arn"),
        "rotation_lambda_arn": Ref(function, "arn"),
        "rotation_rules": rotation_rules(conf),
        "rotate_immediately": False,
    }, tagged=False, depends_on=(permission,))


def _role(b: Builder, storage: Storage, group: str, queue: str, key: Any) -> str:
    """The function's role: this secret only, SSM commands on this cluster's instances only (by tag)
    with the one document it uses, its own log group and queue, and the cluster's key."""
    arn = f"arn:{b.partition}"
    account, region = b.facts.account, b.region
    statements = [
        statement("Allow", ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
                  [Ref(storage.secret, "arn")], sid="ThisSecret"),
        # these actions support no resource scoping in IAM (tracing: X-Ray's daemon actions)
        statement("Allow", ["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces",
                            "secretsmanager:GetRandomPassword", "ssm:GetCommandInvocation",
                            "xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"], sid="Unscoped"),
        statement("Allow", ["ssm:SendCommand"], [f"{arn}:ec2:{region}:{account}:instance/*"],
                  sid="CommandTheClusterNodes",
                  condition={"StringEquals": {"ssm:resourceTag/byoc:cluster": [b.cluster]}}),
        statement("Allow", ["ssm:SendCommand"], [f"{arn}:ssm:{region}:*:document/AWS-RunShellScript"],
                  sid="RunShellScript"),
        statement("Allow", ["logs:CreateLogStream", "logs:PutLogEvents"], [Ref(group, "arn_wildcard")],
                  sid="OwnLogs"),
        statement("Allow", ["sqs:SendMessage"], [Ref(queue, "arn")], sid="DeadLetters"),
        # Lambda makes the function's network interfaces in the private subnets with its role
        # (AWSLambdaVPCAccessExecutionRole's actions, scoped to this account and region)
        statement("Allow", ["ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
                            "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"],
                  [f"{arn}:ec2:{region}:{account}:{what}/*"
                   for what in ("network-interface", "security-group", "subnet")], sid="NetworkInterfaces"),
    ]
    if key is not None:
        statements.append(statement("Allow", ["kms:Decrypt", "kms:GenerateDataKey"], [key], sid="Kms"))
    props: dict[str, Any] = {
        "name": rotation_function_name(b.cluster),
        "path": f"/byoc/{b.cluster}/",
        "description": f"byoc {b.cluster}: admin password rotation function",
        "assume_role_policy": document(statement(
            "Allow", ["sts:AssumeRole"], principal={"Service": ["lambda.amazonaws.com"]},
            condition={"StringEquals": {"aws:SourceAccount": [account]}})),
        "inline_policies": {ROTATION_POLICY: document(*statements)},
        "max_session_duration": 3600,
    }
    boundary = b.spec.data["security"].get("permissions_boundary_arn")
    if boundary:
        props["permissions_boundary"] = boundary
    return b.add("aws_iam_role", "rotation", None, props, label=rotation_function_name(b.cluster))
