"""aws_flow_log against moto: create equals discover, tags in the create call, look before create,
replacement rules, AWS's per-resource refusals (``Unsuccessful``) and idempotent delete."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.model import Live
from byoc.resources.flow_log import KIND
from tests.awsrealism import record_calls

ADDR = "aws_flow_log.main"
#: the HTTP answer of a short-circuited call (botocore reads only its status)
OK = SimpleNamespace(status_code=200, headers={})
ROLE = "arn:aws:iam::123456789012:role/byoc/test/test-flow-logs"


@pytest.fixture
def net(ctx: AwsContext) -> dict[str, str]:
    vpc = ctx.client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName="/aws/vpc-flow-logs/test")
    arn = logs.describe_log_groups(logGroupNamePrefix="/aws/vpc-flow-logs/test")["logGroups"][0]["arn"]
    return {"vpc": vpc, "group": arn.removesuffix(":*")}


def props(net: dict[str, str], **over: Any) -> dict[str, Any]:
    base = {
        "vpc_id": net["vpc"],
        "traffic_type": "ALL",
        "log_destination_type": "cloud-watch-logs",
        "log_destination": net["group"],
        "iam_role_arn": ROLE,
        "max_aggregation_interval": 600,
        "tags": {"Name": "test", "byoc:cluster": "test", "byoc:address": ADDR},
    }
    return {**base, **over}


def answer_create_with(ctx: AwsContext, errors: list[dict[str, str]]) -> list[int]:
    """CreateFlowLogs answers its first calls as AWS does a refusal: 200 with ``Unsuccessful``."""
    calls: list[int] = []

    def hook(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= len(errors):
            refusal = {"ResourceId": "vpc", "Error": errors[len(calls) - 1]}
            body = {"FlowLogIds": [], "Unsuccessful": [refusal]}
            return OK, body
        return None

    ctx.client("ec2").meta.events.register_first("before-call.ec2.CreateFlowLogs", hook)
    return calls


def test_create_equals_discover_with_tags_in_the_create_call(ctx: AwsContext, net: dict[str, str]) -> None:
    calls = record_calls(ctx, "ec2")
    live = KIND.create(ctx, ADDR, props(net, traffic_type="REJECT"))
    assert live.id.startswith("fl-") and live.address == ADDR
    assert live.props == props(net, traffic_type="REJECT")
    assert KIND.discover(ctx) == [live]
    (create,) = [params for op, params, _ in calls if op == "CreateFlowLogs"]
    (spec,) = create["TagSpecifications"]
    assert spec["ResourceType"] == "vpc-flow-log"
    assert {t["Key"]: t["Value"] for t in spec["Tags"]} == props(net)["tags"]
    assert create["ResourceIds"] == [net["vpc"]] and create["ResourceType"] == "VPC"
    assert create["LogDestination"] == net["group"] and create["DeliverLogsPermissionArn"] == ROLE
    assert create["ClientToken"]


def test_not_discovered_for_another_cluster(ctx: AwsContext, net: dict[str, str]) -> None:
    KIND.create(ctx, ADDR, props(net, tags={"byoc:cluster": "other", "byoc:address": ADDR}))
    assert KIND.discover(ctx) == []


def test_a_second_create_carries_on_with_the_first(ctx: AwsContext, net: dict[str, str]) -> None:
    first = KIND.create(ctx, ADDR, props(net))
    again = KIND.create(ctx, ADDR, props(net, tags={**props(net)["tags"], "team": "a"}))
    assert again.id == first.id and again.props["tags"]["team"] == "a"
    assert [x.id for x in KIND.discover(ctx)] == [first.id]
    with pytest.raises(Exception, match="already exists with different traffic_type"):
        KIND.create(ctx, ADDR, props(net, traffic_type="ACCEPT"))


def test_only_tags_change_in_place(ctx: AwsContext, net: dict[str, str]) -> None:
    assert KIND.force_new == {"vpc_id", "traffic_type", "log_destination_type", "log_destination",
                              "iam_role_arn", "max_aggregation_interval"}
    live = KIND.create(ctx, ADDR, props(net))
    want = props(net, tags={"byoc:cluster": "test", "byoc:address": ADDR, "team": "b"})
    updated = KIND.update(ctx, live, want, {"tags"})
    assert updated.props == want and KIND.discover(ctx) == [updated]


def test_a_refusal_in_unsuccessful_is_an_error(ctx: AwsContext, net: dict[str, str]) -> None:
    answer_create_with(ctx, [{"Code": "AccessDenied", "Message": "not allowed to use the log group"}])
    with pytest.raises(ClientError, match="not allowed to use the log group"):
        KIND.create(ctx, ADDR, props(net))
    assert KIND.discover(ctx) == []


def test_a_role_too_new_to_assume_is_waited_out(ctx: AwsContext, net: dict[str, str]) -> None:
    too_new = {"Code": "400", "Message": "Unable to assume given IAM role"}
    calls = answer_create_with(ctx, [too_new, too_new])
    live = KIND.create(ctx, ADDR, props(net))
    assert len(calls) == 3 and KIND.discover(ctx) == [live]


def test_delete_then_delete_again(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    KIND.delete(ctx, live)  # moto raises InvalidFlowLogId.NotFound: already gone
    KIND.delete(ctx, Live(ADDR, KIND.kind, "fl-0123456789abcdef0", {}, {}))


def test_delete_answered_in_unsuccessful(ctx: AwsContext, net: dict[str, str]) -> None:
    live = KIND.create(ctx, ADDR, props(net))
    answers = [{"Code": "InvalidFlowLogId.NotFound", "Message": "gone"},
               {"Code": "UnauthorizedOperation", "Message": "no ec2:DeleteFlowLogs"}]

    def hook(**kwargs: Any) -> Any:
        return OK, {"Unsuccessful": [{"ResourceId": live.id, "Error": answers.pop(0)}]}

    ctx.client("ec2").meta.events.register_first("before-call.ec2.DeleteFlowLogs", hook)
    KIND.delete(ctx, live)  # AWS's way of saying it is already gone
    with pytest.raises(Exception, match="no ec2:DeleteFlowLogs") as err:
        KIND.delete(ctx, live)
    assert getattr(err.value, "aws_id", None) == live.id


def test_provider_values_are_the_props(net: dict[str, str]) -> None:
    assert KIND.provider_values(props(net)) == props(net)
