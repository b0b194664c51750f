"""Rolling node changes: a Proton version bump replaces the nodes one at a time on moto (order of
AWS calls recorded), a node that stays unhealthy stops the roll, and the pure rules behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from byoc.aws.context import AwsContext
from byoc.engine import Engine
from byoc.executor import HEALTHY, operation_graph
from byoc.operations.upgrading import upgrade_steps
from byoc.plan import CREATE, DELETE, NOOP, REPLACE, Change, Plan
from byoc.render import render_plan, render_plan_json
from byoc.rolling import node_of, rolling_order
from byoc.spec import load_spec
from byoc.state import LocalBackend
from tests.awsrealism import (
    TargetHealth,
    free_eips_of_deleted_nat_gateways,
    https_bucket_policies,
    record_calls,
)
from tests.daytwo import AMI, DEV, quiet_ctx
from tests.nodeshell import NodeShell, proton_version

THREE = "compute.instance_count=3"
BUMP = "cluster.proton_version=1.6.17"


def engine_for(ctx: AwsContext, backend: LocalBackend, *overrides: str) -> Engine:
    """An engine with an upgrade's steps (a version bump is an upgrade: backup, version check)."""
    spec = load_spec(str(DEV), overrides)
    eng = Engine(spec, ctx=ctx, backend=backend, ami_resolver=lambda itype: AMI, health_timeout=0.3)
    eng.upgrade_steps = upgrade_steps(eng)
    return eng


@pytest.fixture
def cluster(
    moto: None, tmp_path: Path, monkeypatch: Any,
) -> Iterator[tuple[AwsContext, LocalBackend, TargetHealth]]:
    https_bucket_policies(monkeypatch)  # the upgrade's backup writes its manifest
    spec = load_spec(str(DEV))
    ctx = quiet_ctx(spec)
    NodeShell(proton_version("1.6.17")).install(ctx.client("ssm"))  # each new node's Proton answers
    free_eips_of_deleted_nat_gateways(ctx.client("ec2"))
    health = TargetHealth(ctx.client("elbv2"), draining=2, initial=2)
    backend = LocalBackend(tmp_path, spec.cluster_name)
    result = engine_for(ctx, backend, THREE).apply(engine_for(ctx, backend, THREE).plan())
    assert result.ok, [str(f.error) for f in result.failures]
    yield ctx, backend, health


def _ids(backend: LocalBackend) -> dict[str, str]:
    """node key -> instance id, from the state."""
    state = backend.read()
    assert state is not None
    return {node_of(a) or "": r.id for a, r in state.resources.items() if r.kind == "aws_instance"}


def test_a_version_bump_rolls_one_node_at_a_time(
    cluster: tuple[AwsContext, LocalBackend, TargetHealth],
) -> None:
    ctx, backend, health = cluster
    old = _ids(backend)
    eng = engine_for(ctx, backend, THREE, BUMP)
    plan = eng.plan()
    assert plan.rolling == ("0", "1", "2")
    assert {plan.change(f'aws_instance.node["{k}"]').action for k in old} == {REPLACE}
    assert any(n.startswith("rolling change") for n in plan.notes)
    assert "rolling change" in render_plan(plan)
    assert json.loads(render_plan_json(plan))["byoc"]["rolling"] == ["0", "1", "2"]
    assert Plan.from_dict(plan.to_dict()).rolling == plan.rolling
    g = operation_graph(plan)
    assert ('aws_instance.node["0"]', HEALTHY) in g
    assert g.has_edge(('aws_instance.node["0"]', HEALTHY), ('aws_instance.node["1"]', "delete"))

    calls = record_calls(ctx, "ec2", "elbv2")
    result = eng.apply(plan)
    assert result.ok, [str(f.error) for f in result.failures]
    new = _ids(backend)
    node_of_id = {**{v: k for k, v in old.items()}, **{v: k for k, v in new.items()}}
    groups = sum(1 for c in plan.changes if c.kind == "aws_lb_target_group")
    assert groups == 2  # application load balancer: 8123 and 3218

    out: set[str] = set()  # nodes out of service
    healthy: dict[str, set[str]] = {}  # node -> target groups its new instance is healthy in
    order: list[tuple[str, str]] = []  # (event, node)
    draining: set[str] = set()  # instance ids last seen draining
    most = 0
    for action, params, parsed in calls:
        if action == "DeregisterTargets":
            node = node_of_id[params["Targets"][0]["Id"]]
            out.add(node)
            order.append(("deregister", node))
        elif action in ("StopInstances", "TerminateInstances"):
            node = node_of_id[params["InstanceIds"][0]]
            assert node in out, f"{action} of node {node} before it was deregistered"
            gone = params["InstanceIds"][0]
            assert gone not in draining, f"{action} of node {node} while it still drains"
            order.append((action, node))
        elif action == "DescribeTargetHealth":
            for d in parsed["TargetHealthDescriptions"]:
                if d["TargetHealth"]["State"] == "draining":
                    draining.add(d["Target"]["Id"])
                elif d["Target"]["Id"] in draining:
                    draining.discard(d["Target"]["Id"])
                node = node_of_id.get(d["Target"]["Id"], "")
                if d["Target"]["Id"] == new.get(node) and d["TargetHealth"]["State"] == "healthy":
                    healthy.setdefault(node, set()).add(params["TargetGroupArn"])
                    if len(healthy[node]) == groups and node in out:
                        out.discard(node)
                        order.append(("healthy", node))
        most = max(most, len(out))
    assert most == 1
    assert [e for e in order if e[0] == "healthy"] == [("healthy", "0"), ("healthy", "1"), ("healthy", "2")]
    for k in ("1", "2"):
        prev = str(int(k) - 1)
        first = min(i for i, e in enumerate(order) if e[1] == k)
        assert first > order.index(("healthy", prev)), order
        assert order.index(("TerminateInstances", k)) > order.index(("healthy", prev))
    assert health.drained  # draining answers were waited out
    assert not eng.plan().has_changes


def test_a_node_that_stays_unhealthy_stops_the_roll(
    cluster: tuple[AwsContext, LocalBackend, TargetHealth],
) -> None:
    ctx, backend, health = cluster
    old = _ids(backend)
    health.fail_new = True
    eng = engine_for(ctx, backend, THREE, BUMP)
    result = eng.apply(eng.plan())
    assert not result.ok
    (failure,) = result.failures
    assert failure.address == 'aws_instance.node["0"]'
    text = str(failure.error)
    assert "node 0 did not come back" in text and "unhealthy" in text
    assert "nodes 1, 2 were not touched" in text and "byoc apply" in text
    assert f"instance {_ids(backend)['0']} did not become healthy in target group" in text
    # nodes 1 and 2 (and what refers to their instances: alarms, the dashboard) were not started
    assert {node_of(a) for a in result.skipped if a.startswith("aws_instance")} == {"1", "2"}
    assert {'aws_volume_attachment.data["1"]', 'aws_lb_target_group_attachment.node["8123-2"]'} <= set(
        result.skipped)
    now = _ids(backend)
    assert now["0"] != old["0"] and now["1"] == old["1"] and now["2"] == old["2"]
    ec2 = ctx.client("ec2")
    for k in ("1", "2"):
        (inst,) = ec2.describe_instances(InstanceIds=[old[k]])["Reservations"][0]["Instances"]
        assert inst["State"]["Name"] == "running"

    # run again while node 0 is still unhealthy: the roll does not start (two nodes out otherwise)
    again = engine_for(ctx, backend, THREE, BUMP)
    plan = again.plan()
    assert plan.rolling == ("1", "2")
    result = again.apply(plan)
    (failure,) = result.failures
    assert failure.address == 'aws_instance.node["0"]'
    assert "node 0 is not healthy" in str(failure.error) and "roll did not start" in str(failure.error)
    assert _ids(backend) == now

    # node 0 recovers: the roll continues with nodes 1 and 2
    health.unhealthy.clear()
    health.fail_new = False
    result = again.apply(again.plan())
    assert result.ok, [str(f.error) for f in result.failures]
    final = _ids(backend)
    assert final["0"] == now["0"] and final["1"] != old["1"] and final["2"] != old["2"]
    assert not again.plan().has_changes


# -- pure rules --------------------------------------------------------------------------------
def _c(address: str, kind: str, action: str, deps: tuple[str, ...] = ()) -> Change:
    return Change(address, kind, action, "x", depends_on=deps, prior_id=None if action == CREATE else "id")


def test_node_of_names_the_node_of_every_node_resource() -> None:
    assert node_of('aws_instance.node["3"]') == "3"
    assert node_of('aws_lb_target_group_attachment.node["8123-12"]') == "12"
    assert node_of('aws_volume_attachment.data["0"]') == "0"
    assert node_of('aws_ebs_volume.data["1"]') == "1"
    assert node_of('aws_lb_target_group.main["8123"]') is None
    assert node_of("aws_vpc.main") is None


def test_only_kept_nodes_that_go_out_of_service_roll_and_a_single_node_is_told() -> None:
    changes = [
        _c('aws_instance.node["0"]', "aws_instance", NOOP),
        _c('aws_volume_attachment.data["0"]', "aws_volume_attachment", REPLACE),
        _c('aws_instance.node["10"]', "aws_instance", REPLACE),
        _c('aws_instance.node["2"]', "aws_instance", REPLACE),
        _c('aws_instance.node["3"]', "aws_instance", CREATE),
        _c('aws_instance.node["4"]', "aws_instance", DELETE),
    ]
    nodes, notes = rolling_order(changes)
    assert nodes == ("0", "2", "10") and "nodes 0, 2, 10 are replaced or stopped one at a time" in notes[0]
    nodes, notes = rolling_order(changes[2:3])
    assert nodes == ("10",) and "cannot roll without downtime" in notes[0] and "one at a time" not in notes[0]
    assert rolling_order(changes[4:]) == ((), ())


def test_a_replaced_subnet_under_the_nodes_means_no_roll_and_says_so() -> None:
    changes = [
        _c("aws_subnet.private", "aws_subnet", REPLACE),
        _c('aws_instance.node["0"]', "aws_instance", REPLACE, ("aws_subnet.private",)),
        _c('aws_instance.node["1"]', "aws_instance", REPLACE, ("aws_subnet.private",)),
    ]
    nodes, notes = rolling_order(changes)
    assert nodes == () and "AT ONCE" in notes[0] and "aws_subnet.private" in notes[0]


def test_a_leaving_node_drains_before_its_volume_is_detached() -> None:
    inst, att, tga = ('aws_instance.node["3"]', 'aws_volume_attachment.data["3"]',
                      'aws_lb_target_group_attachment.node["8123-3"]')
    changes = (
        Change(inst, "aws_instance", DELETE, "x", prior_id="i-3"),
        Change(att, "aws_volume_attachment", DELETE, "x", old_depends_on=(inst,), prior_id="v:i-3"),
        Change(tga, "aws_lb_target_group_attachment", DELETE, "x", old_depends_on=(inst,), prior_id="t"),
    )
    g = operation_graph(Plan("c", None, 0, "", "", (), changes))
    assert g.has_edge((tga, "delete"), (att, "delete")) and g.has_edge((att, "delete"), (inst, "delete"))
