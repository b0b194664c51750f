"""The tagging index: one GetResources page holds many of the cluster's items, only the services
whose kinds read it are asked for, and a kind asking for another service is told so."""

from __future__ import annotations

from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.resources._tagging import tagged


def count_gets(ctx: AwsContext) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    ctx.client("resourcegroupstaggingapi").meta.events.register(
        "before-parameter-build.resource-groups-tagging-api.GetResources",
        lambda params, **kw: seen.append(params))
    return seen


def test_forty_tagged_items_fit_one_page_and_ec2_is_not_asked_for(ctx: AwsContext) -> None:
    logs = ctx.client("logs")
    tags = {"byoc:cluster": "test", "Environment": "e", "Team": "t", "CostCenter": "c", "Name": "n"}
    for i in range(40):  # 6 tags each: 240 tags, three pages at the API's default of 100
        logs.create_log_group(logGroupName=f"/g/{i}", tags={**tags, "byoc:address": f"a.g[{i}]"})
    ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": k, "Value": v} for k, v in
                                         {**tags, "byoc:address": "aws_vpc.main"}.items()]}])
    gets = count_gets(ctx)
    with ctx.discovery_pass():
        found = tagged(ctx, "logs", "log-group:")
        assert tagged(ctx, "s3") == []
    assert len(found) == 40 and len(gets) == 1
    assert "ec2" not in gets[0]["ResourceTypeFilters"]


def test_a_service_outside_the_index_is_a_programming_error(ctx: AwsContext) -> None:
    with pytest.raises(ValueError, match="SERVICES"):
        tagged(ctx, "secretsmanager")
