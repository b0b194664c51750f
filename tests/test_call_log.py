"""`byoc -v`: every AWS call is logged with service, action and duration, retries included, and
nothing of a request's body."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext


def test_calls_are_logged_and_counted(ctx: AwsContext, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="byoc.aws")
    ec2 = ctx.client("ec2")
    ec2.describe_vpcs()
    ec2.create_vpc(CidrBlock="10.9.0.0/16")
    lines = [r.getMessage() for r in caplog.records if r.name == "byoc.aws"]
    assert any(line.startswith("aws ec2 DescribeVpcs ") and line.endswith(" 200") for line in lines)
    assert any("CreateVpc" in line for line in lines)
    assert not any("10.9.0.0/16" in line for line in lines)  # parameters are never logged
    assert ctx.calls.counts[("ec2", "DescribeVpcs")] == 1


def test_retries_are_logged(ctx: AwsContext, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="byoc.aws")
    ctx.sleep = lambda s: None
    sts = ctx.client("sts")
    tries: list[int] = []

    def throttle(**kwargs: Any) -> dict[str, Any] | None:
        tries.append(1)
        if len(tries) == 1:
            # the answer botocore's retry handler sees: a throttled HTTP 400
            from botocore.awsrequest import AWSResponse

            body = (b"<ErrorResponse><Error><Code>Throttling</Code><Message>slow down</Message></Error>"
                    b"</ErrorResponse>")
            return AWSResponse("https://sts", 400, {}, _Raw(body))  # type: ignore[return-value]
        return None

    sts.meta.events.register_first("before-send.sts.GetCallerIdentity", throttle)
    sts.get_caller_identity()
    lines = [r.getMessage() for r in caplog.records if r.name == "byoc.aws"]
    assert any("GetCallerIdentity attempt 1 answered Throttling" in line for line in lines), lines
    assert len(tries) == 2


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Any:
        yield self.body


def test_an_error_answer_is_logged(ctx: AwsContext, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="byoc.aws")
    with pytest.raises(ClientError):
        ctx.client("ec2").delete_vpc(VpcId="vpc-00000000")
    assert any("DeleteVpc" in r.getMessage() for r in caplog.records if r.name == "byoc.aws")
