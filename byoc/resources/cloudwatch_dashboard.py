"""``aws_cloudwatch_dashboard``: the cluster's CloudWatch dashboard, named after the cluster.

Dashboards cannot be tagged, so the convention is fixed: one dashboard per cluster, named
exactly ``ctx.cluster``, always at the address ``aws_cloudwatch_dashboard.main``; discovery is
one GetDashboard by that name (its not-found answer says there is none). The body is compared as parsed JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from byoc.aws.context import AwsContext
from byoc.aws.errors import error_code, unless_gone
from byoc.errors import CloudError
from byoc.model import Live, make_address
from byoc.resources._ec2 import wait_gone
from byoc.resources._monitoring import CONFLICT_CODES
from byoc.resources._shapes import json_text
from byoc.resources.base import ResourceType

KIND_NAME = "aws_cloudwatch_dashboard"
ADDRESS = make_address(KIND_NAME, "main")


class Dashboard(ResourceType):
    kind = KIND_NAME
    service = "cloudwatch"
    force_new = frozenset({"dashboard_name"})

    def provider_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``dashboard_body`` as JSON text (unknown while a widget names a resource not yet made)."""
        return {k: json_text(v) if k == "dashboard_body" else v for k, v in values.items()}

    def discover(self, ctx: AwsContext) -> list[Live]:
        dashboard = _get(ctx, ctx.cluster)
        return [] if dashboard is None else [self._live(dashboard)]

    def create(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        if address != ADDRESS or props["dashboard_name"] != ctx.cluster:
            raise CloudError(
                f"the dashboard must be {ADDRESS} named {ctx.cluster!r} (got {address} named "
                f"{props['dashboard_name']!r}): dashboards cannot be tagged, so discovery finds the "
                "cluster's one by that name",
                address=address,
                code="InvalidAddress",
            )
        return self._put(ctx, address, props)

    def update(self, ctx: AwsContext, live: Live, props: Mapping[str, Any], changed: set[str]) -> Live:
        return self._put(ctx, live.address, props)

    def _put(self, ctx: AwsContext, address: str, props: Mapping[str, Any]) -> Live:
        name = props["dashboard_name"]
        body = json.dumps(props["dashboard_body"], sort_keys=True, separators=(",", ":"))
        cw = ctx.client("cloudwatch")
        try:
            resp = ctx.retry(
                lambda: cw.put_dashboard(DashboardName=name, DashboardBody=body),
                codes=CONFLICT_CODES,
                timeout=120.0,
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidParameterInput":
                raise
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            raise CloudError(
                f"dashboard {name}: AWS refused its body: {message}",
                address=address,
                aws_id=name,
                code="InvalidParameterInput",
            ) from exc
        problems = resp.get("DashboardValidationMessages") or []
        if problems:
            # AWS stores a body that has only warnings; byoc still treats any message as a failure
            listed = "; ".join(f"{p.get('DataPath', '')}: {p.get('Message', '')}".strip() for p in problems)
            raise CloudError(
                f"dashboard {name}: PutDashboard reported {len(problems)} problem(s): {listed}",
                address=address,
                aws_id=name,
                code="DashboardValidation",
            )
        dashboard = ctx.poll(
            lambda: _get(ctx, name), lambda d: d is not None, timeout=120.0, what=f"dashboard {name}"
        )
        assert dashboard is not None
        return self._live(dashboard)

    def delete(self, ctx: AwsContext, live: Live) -> None:
        cw = ctx.client("cloudwatch")
        unless_gone(
            lambda: ctx.retry(lambda: cw.delete_dashboards(DashboardNames=[live.id]), codes=CONFLICT_CODES)
        )
        wait_gone(ctx, lambda: _get(ctx, live.id) is not None, address=live.address, aws_id=live.id)

    def _live(self, dashboard: Mapping[str, Any]) -> Live:
        name = dashboard["DashboardName"]
        props = {"dashboard_name": name, "dashboard_body": json.loads(dashboard["DashboardBody"])}
        return Live(ADDRESS, self.kind, name, props, {"arn": dashboard["DashboardArn"]})


def _get(ctx: AwsContext, name: str) -> dict[str, Any] | None:
    """GetDashboard for ``name`` (one call, there or not); None if it does not exist."""
    cw = ctx.client("cloudwatch")
    resp = unless_gone(lambda: cw.get_dashboard(DashboardName=name))
    return None if resp is None else dict(resp)


KIND = Dashboard()
