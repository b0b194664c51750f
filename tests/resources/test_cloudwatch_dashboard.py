"""aws_cloudwatch_dashboard against moto: create = discover, the naming convention, body
round-trips, PutDashboard's refusals and validation messages, delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.errors import CloudError
from byoc.resources.cloudwatch_dashboard import ADDRESS, KIND

BODY: dict[str, Any] = {
    "widgets": [
        {
            "type": "metric",
            "x": 0,
            "y": 0,
            "width": 12,
            "height": 6,
            "properties": {
                "metrics": [["AWS/EC2", "CPUUtilization", "InstanceId", "i-0123456789abcdef0"]],
                "region": "us-west-2",
                "title": "CPU",
                "stat": "Average",
                "period": 300,
            },
        }
    ]
}


def props(**over: Any) -> dict[str, Any]:
    return {"dashboard_name": "test", "dashboard_body": BODY, **over}


def hook(ctx: AwsContext, op: str, fn: Callable[..., Any], when: str = "before-call") -> list[int]:
    """Register ``fn`` first for ``op`` (``*`` = every operation) on the CloudWatch client; count calls."""
    calls: list[int] = []

    def counted(**kwargs: Any) -> Any:
        calls.append(1)
        return fn(len(calls), **kwargs)

    ctx.client("cloudwatch").meta.events.register_first(
        f"{when}.cloudwatch" + ("" if op == "*" else f".{op}"), counted
    )
    return calls


def count(ctx: AwsContext, op: str) -> list[int]:
    return hook(ctx, op, lambda n, **kw: None)


def fail_first(ctx: AwsContext, op: str, code: str, times: int) -> list[int]:
    def fail(n: int, **kwargs: Any) -> None:
        if n <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, op)

    return hook(ctx, op, fail)


def reorder(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(v) for v in value]
    return value


def test_create_equals_discover(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDRESS, props())
    assert live.address == "aws_cloudwatch_dashboard.main" and live.id == "test"
    assert live.props == props()
    assert live.attr("arn") == "arn:aws:cloudwatch::123456789012:dashboard/test"
    assert KIND.discover(ctx) == [live]


def test_discovery_is_per_cluster_and_by_exact_name(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDRESS, props())
    cw = ctx.client("cloudwatch")
    cw.put_dashboard(DashboardName="test-extra", DashboardBody=json.dumps({"widgets": []}))  # same prefix
    cw.put_dashboard(DashboardName="other-dash", DashboardBody=json.dumps({"widgets": []}))
    other = AwsContext(cluster="other", region="us-west-2", sleep=lambda s: None, poll_delay=0.01)
    assert KIND.discover(other) == []
    assert KIND.discover(ctx) == [live]


def test_discovery_is_one_get_there_or_not(ctx: AwsContext) -> None:
    lists, gets = count(ctx, "ListDashboards"), count(ctx, "GetDashboard")
    assert KIND.discover(ctx) == []
    assert (len(lists), len(gets)) == (0, 1)  # no dashboard yet: its not-found answer says so
    live = KIND.create(ctx, ADDRESS, props())
    lists.clear()
    gets.clear()
    assert KIND.discover(ctx) == [live]
    assert (len(lists), len(gets)) == (0, 1)


def test_body_round_trips_regardless_of_key_order(ctx: AwsContext) -> None:
    text = json.dumps(reorder(BODY), indent=4)
    assert text != json.dumps(BODY, indent=4)
    ctx.client("cloudwatch").put_dashboard(DashboardName="test", DashboardBody=text)
    [live] = KIND.discover(ctx)
    assert live.props == props()
    assert KIND.create(ctx, ADDRESS, props(dashboard_body=reorder(BODY))) == live


def test_update_body_in_place(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDRESS, props())
    body = {"widgets": [*BODY["widgets"], {"type": "text", "x": 0, "y": 6, "width": 24, "height": 2,
                                           "properties": {"markdown": "# Proton"}}]}
    updated = KIND.update(ctx, live, props(dashboard_body=body), {"dashboard_body"})
    assert updated.props == props(dashboard_body=body) and updated.id == live.id
    assert KIND.discover(ctx) == [updated]


def test_name_change_replaces() -> None:
    assert KIND.force_new == frozenset({"dashboard_name"})
    assert KIND.pins == frozenset() and KIND.holds_data is False


@pytest.mark.parametrize(
    ("address", "name"),
    [("aws_cloudwatch_dashboard.ops", "test"), (ADDRESS, "test-ops")],
)
def test_create_outside_the_convention_is_refused_before_any_call(
    ctx: AwsContext, address: str, name: str
) -> None:
    calls = hook(ctx, "*", lambda n, **kw: None)
    with pytest.raises(CloudError, match=r"must be aws_cloudwatch_dashboard\.main named 'test'"):
        KIND.create(ctx, address, props(dashboard_name=name))
    assert calls == []


def test_invalid_body_is_an_error_naming_the_dashboard(ctx: AwsContext) -> None:
    # the body byoc sends is always valid JSON: break it on the way so moto refuses it as AWS would
    def corrupt(n: int, params: dict[str, Any], **kwargs: Any) -> None:
        params["DashboardBody"] = params["DashboardBody"][:-1]

    hook(ctx, "PutDashboard", corrupt, when="before-parameter-build")
    with pytest.raises(CloudError) as err:
        KIND.create(ctx, ADDRESS, props())
    assert err.value.code == "InvalidParameterInput" and err.value.aws_id == "test"
    assert str(err.value).startswith(
        "aws_cloudwatch_dashboard.main (test): dashboard test: AWS refused its body: Body is invalid JSON"
    )
    assert KIND.discover(ctx) == []


def test_validation_messages_are_an_error_listing_them(ctx: AwsContext) -> None:
    messages = [
        {"DataPath": "/widgets/0/properties/metrics/0", "Message": "Should NOT have more than 4 items"},
        {"DataPath": "/widgets/1", "Message": "Should have required property 'type'"},
    ]
    hook(ctx, "PutDashboard", lambda n, parsed, **kw: parsed.update(DashboardValidationMessages=messages),
         when="after-call")
    with pytest.raises(CloudError) as err:
        KIND.create(ctx, ADDRESS, props())
    text = str(err.value)
    assert "dashboard test: PutDashboard reported 2 problem(s)" in text
    assert "/widgets/0/properties/metrics/0: Should NOT have more than 4 items" in text
    assert "/widgets/1: Should have required property 'type'" in text


def test_delete_then_delete_again(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDRESS, props())
    KIND.delete(ctx, live)
    assert KIND.discover(ctx) == []
    deletes = count(ctx, "DeleteDashboards")
    KIND.delete(ctx, live)  # ResourceNotFound: already gone
    assert len(deletes) == 1


def test_delete_retries_conflict(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDRESS, props())
    calls = fail_first(ctx, "DeleteDashboards", "ConflictException", 2)
    KIND.delete(ctx, live)
    assert len(calls) == 3 and KIND.discover(ctx) == []


def test_delete_raises_other_errors_at_once(ctx: AwsContext) -> None:
    live = KIND.create(ctx, ADDRESS, props())
    calls = fail_first(ctx, "DeleteDashboards", "AccessDenied", 5)
    with pytest.raises(ClientError, match="AccessDenied"):
        KIND.delete(ctx, live)
    assert len(calls) == 1 and KIND.discover(ctx) == [live]
