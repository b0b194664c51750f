"""An applied specs/dev.yaml on moto shared by the tests of one module (drift, state toolbox)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.plan import Plan
from byoc.planner import PlanOptions
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import free_eips_of_deleted_nat_gateways
from tests.daytwo import AMI, DEV, quiet_ctx


class Cluster:
    """An applied specs/dev.yaml on moto, with boto3 clients for changing it by hand."""

    def __init__(self, ctx: AwsContext, backend: LocalBackend) -> None:
        self.ctx, self.backend = ctx, backend

    def engine(self, *overrides: str) -> Engine:
        spec = load_spec(str(DEV), overrides)
        return Engine(spec, ctx=self.ctx, backend=self.backend, ami_resolver=lambda itype: AMI)

    def id(self, address: str) -> str:
        state = self.backend.read()
        assert state is not None
        return state.resources[address].id

    def client(self, service: str) -> Any:
        return self.ctx.client(service)

    def repair(self, options: PlanOptions | None = None, plan: Plan | None = None) -> None:
        """Apply (``plan``, or a new one), then assert drift is back in sync."""
        eng = self.engine()
        plan = plan or eng.plan(options)
        result = eng.apply(plan)
        assert result.ok, [str(f.error) for f in result.failures]
        assert eng.drift().in_sync, eng.drift().to_dict()


def applied_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Use as a module-scoped fixture: one in-process moto holding one applied dev cluster."""
    from moto import mock_aws

    with mock_aws():
        spec = load_spec(str(DEV))
        ctx = quiet_ctx(spec)
        free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
        c = Cluster(ctx, LocalBackend(tmp_path_factory.mktemp("state"), spec.cluster_name))
        eng = c.engine()
        assert eng.apply(eng.plan()).ok
        assert eng.drift().in_sync
        yield c


def owned_tags(address: str, cluster: str = "dev-proton") -> list[dict[str, str]]:
    """byoc's ownership tags, for resources made behind its back that claim an address."""
    return [{"Key": "byoc:cluster", "Value": cluster}, {"Key": "byoc:address", "Value": address}]
