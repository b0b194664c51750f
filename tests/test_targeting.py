"""-target and -replace, and the protection of data-bearing resources through them: the real
blueprint of specs/dev.yaml and the real kinds' rules, over the in-memory cloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from byoc import blueprint
from byoc.errors import PlanError
from byoc.executor import Executor
from byoc.plan import Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.render import render_plan
from byoc.resources import registry
from byoc.spec import load_spec
from byoc.state.model import State
from tests.fakecloud import FakeCloud, FakeKind

ROOT = Path(__file__).resolve().parents[1]
NODE = 'aws_instance.node["0"]'


class World:
    def __init__(self) -> None:
        self.cloud = FakeCloud()
        self.kinds = {k: FakeKind(k, self.cloud, like=v) for k, v in registry().items()}
        self.state = State(cluster="dev-proton", lineage="00000000-0000-4000-8000-000000000000")

    def plan(self, *overrides: str, **options: object) -> Plan:
        spec = load_spec(str(ROOT / "specs/dev.yaml"), overrides)
        live = {x.address: x for k in self.kinds.values() for x in k.discover(None)}
        return make_plan(blueprint.build(spec), self.state, live, rules_of(registry()),
                         cluster=spec.cluster_name, options=PlanOptions(**options))  # type: ignore[arg-type]

    def apply(self, plan: Plan) -> None:
        result = Executor(self.kinds, None, self.state, lambda s: None, parallelism=2).run(plan)
        assert result.ok, [str(f.error) for f in result.failures]
        self.state = result.state


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def applied(world: World) -> World:
    world.apply(world.plan())
    return world


def test_target_plans_the_resource_and_what_it_depends_on(world: World) -> None:
    plan = world.plan(targets=("aws_security_group.node",))
    chain = {"aws_security_group.node", "aws_security_group.lb", "aws_vpc.main"}  # node's rules name lb's
    assert {c.address for c in plan.changes} == chain
    assert plan.targets == tuple(sorted(chain))
    assert "resource targeting is in effect" in render_plan(plan)
    assert plan.to_dict()["complete"] is False
    world.apply(plan)
    assert set(world.state.resources) == chain
    rest = world.plan()
    assert "aws_security_group.node" not in {c.address for c in rest.actionable}
    assert len(rest.actionable) == 39 - 3


def test_target_by_kind_and_name_selects_every_key(world: World) -> None:
    plan = world.plan(targets=("aws_subnet.private",))
    assert {c.address for c in plan.changes} == {
        'aws_subnet.private["us-west-2a"]', 'aws_subnet.private["us-west-2b"]', "aws_vpc.main"}


def test_target_or_replace_that_matches_nothing_is_an_error(applied: World) -> None:
    with pytest.raises(PlanError, match=r"-target aws_vpc\.nope: no resource of this cluster has this"):
        applied.plan(targets=("aws_vpc.nope",))
    with pytest.raises(PlanError, match=r'-replace aws_instance\.node\["7"\]: no resource'):
        applied.plan(replace=('aws_instance.node["7"]',))


def test_replace_forces_replacement_and_its_dependents_follow(applied: World) -> None:
    plan = applied.plan(replace=(NODE,))
    actions = {c.address: c.action for c in plan.actionable}
    assert actions[NODE] == "replace"
    assert plan.change(NODE).reason == "replacement requested with -replace"
    assert actions['aws_volume_attachment.data["0"]'] == "replace"
    assert 'aws_ebs_volume.data["0"]' not in actions
    old = applied.state.resources[NODE].id
    applied.apply(plan)
    assert applied.state.resources[NODE].id != old
    assert not applied.plan().has_changes


def test_replace_with_target_touches_only_the_target_chain(applied: World) -> None:
    plan = applied.plan(replace=(NODE,), targets=(NODE,))
    assert [(c.address, c.action) for c in plan.actionable] == [(NODE, "replace")]


def test_replace_of_data_bearing_resources_needs_the_data_flag(applied: World) -> None:
    for address in ('aws_ebs_volume.data["0"]', "aws_s3_bucket.data"):
        plan = applied.plan(replace=(address,))
        assert not plan.actionable
        assert any(r.startswith(address) and "--include-data" in r for r in plan.refused)
        assert "Refused (protected, data-bearing resources):" in render_plan(plan)
        allowed = applied.plan(replace=(address,), allow_data_loss=True)
        assert allowed.change(address).action == "replace"


def test_protected_resources_survive_a_moved_state_record(applied: World) -> None:
    # A state record moved to an address the spec does not know would be a deletion candidate
    # (a `state mv` trick): data-bearing kinds are refused all the same.
    rs = applied.state.resources['aws_ebs_volume.data["0"]']
    applied.state = applied.state.without(rs.address).with_resource(
        type(rs)('aws_ebs_volume.data["5"]', rs.kind, rs.id, rs.props, rs.attrs, rs.depends_on))
    applied.cloud.items[rs.id]["address"] = 'aws_ebs_volume.data["5"]'  # re-tagged, as state mv does
    plan = applied.plan(delete_unmanaged=True)
    assert all(c.address != 'aws_ebs_volume.data["5"]' for c in plan.actionable)
    assert any(r.startswith('aws_ebs_volume.data["5"]') for r in plan.refused)
    destroy = applied.plan(destroy=True)
    assert not any(c.kind in ("aws_ebs_volume", "aws_s3_bucket") for c in destroy.actionable)


def test_destroy_with_target_takes_what_depends_on_it(applied: World) -> None:
    plan = applied.plan(destroy=True, targets=("aws_security_group.lb",))
    gone = {c.address for c in plan.actionable}
    assert "aws_security_group.lb" in gone and "aws_lb.main" in gone
    assert "aws_vpc.main" not in gone
    assert plan.drift is None  # a destroy plan undoes nothing, so it shows no drift
