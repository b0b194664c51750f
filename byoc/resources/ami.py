"""The AMI lookup for nodes without ``compute.ami``: the region's current Amazon Linux 2023,
from AWS's public SSM parameter for the instance type's architecture. A lookup, not a kind.
"""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, to_cloud_error
from byoc.errors import CloudError

PARAMETER_PREFIX = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"

#: Graviton families: a "g" right after the generation digit (c6g, m7gd, c7gn, t4g, x2gd, im4gn)
_GRAVITON = re.compile(r"^[a-z]+[0-9]+g")


def resolve_ami(ctx: AwsContext, instance_type: str) -> str:
    """The AMI id of the current Amazon Linux 2023 (default kernel) for ``instance_type``."""
    name = PARAMETER_PREFIX + architecture(ctx, instance_type)
    try:
        value = ctx.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            raise CloudError(
                f"cannot find the Amazon Linux 2023 AMI for {instance_type} in {ctx.region}: the public "
                f"SSM parameter {name} does not exist there. Set compute.ami to an AMI id",
                code="ParameterNotFound",
            ) from exc
        err = to_cloud_error(exc)
        raise CloudError(
            f"looking up the Amazon Linux 2023 AMI ({name}) failed: {err.args[0]}. "
            "Allow ssm:GetParameter on it, or set compute.ami to an AMI id",
            code=err.code,
        ) from exc
    if not isinstance(value, str) or not value.startswith("ami-"):
        raise CloudError(f"the SSM parameter {name} holds {value!r}, not an AMI id. Set compute.ami",
                         code="InvalidAmi")
    return value


def architecture(ctx: AwsContext, instance_type: str) -> str:
    """``arm64`` or ``x86_64``: from DescribeInstanceTypes, else from the family's name."""
    try:
        types = ctx.client("ec2").describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except (ClientError, BotoCoreError):  # unknown type, no permission, or no answer: guess
        types = []
    for t in types:
        archs = (t.get("ProcessorInfo") or {}).get("SupportedArchitectures") or []
        if "arm64" in archs:
            return "arm64"
        if "x86_64" in archs:
            return "x86_64"
    return family_architecture(instance_type)


def family_architecture(instance_type: str) -> str:
    """The architecture the family's name implies: Graviton (``arm64``) or ``x86_64``."""
    family = instance_type.split(".", 1)[0].lower()
    return "arm64" if family == "a1" or _GRAVITON.match(family) else "x86_64"
