"""-target and -replace, and the protection of data-bearing resources through them: the real
blueprint of specs/dev.yaml and the real kinds' rules, over the in-memory cloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from byoc import blueprint
from byoc.blueprint import Facts
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
    assert len(rest.actionable) == 44 - 3


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
    for address in ('aws_ebs_volume.data["0"]', "aws_s3_bucket.data", "aws_s3_bucket.logs"):
        with pytest.raises(PlanError) as refused:
            applied.plan(replace=(address,))
        text = str(refused.value)
        assert f"{address} ({applied.state.resources[address].id}): -replace asks for its replacement" in text
        assert f"leave out -replace {address}" in text and "--include-data" in text
        allowed = applied.plan(replace=(address,), allow_data_loss=True)
        assert allowed.change(address).action == "replace"


def _facts(world: World) -> Facts:
    """The engine's facts: each node stays in its existing data volume's zone."""
    live = [x for k in world.kinds.values() for x in k.discover(None)]
    return Facts(node_azs=tuple(sorted((x.address.split('"')[1], str(x.props["availability_zone"]))
                                       for x in live if x.kind == "aws_ebs_volume")))


#: spec changes that would replace a protected resource: (--set overrides, address, what the
#: message must say of why and of the way back)
PROTECTED_CHANGES = [
    (("storage.bucket_name=dev-proton-renamed",), "aws_s3_bucket.data",
     "bucket cannot change in place ('dev-proton-data-byoc-example' -> 'dev-proton-renamed')",
     "set storage.bucket_name back to 'dev-proton-data-byoc-example'"),
    (('aws.availability_zones=["us-west-2b","us-west-2c"]',), 'aws_ebs_volume.data["0"]',
     "availability_zone cannot change in place ('us-west-2a' -> 'us-west-2b')",
     "keep 'us-west-2a' in aws.availability_zones"),
    (("security.encryption.enabled=false",), 'aws_ebs_volume.data["0"]',
     "encrypted cannot change in place (True -> False)", "keep security.encryption.enabled as it was"),
    (("security.encryption.create_kms_key=true",), 'aws_ebs_volume.data["0"]',
     "kms_key_id cannot change in place (None -> (known after apply))",
     "keep security.encryption (create_kms_key / kms_key_arn) as it was"),
    (("compute.disk_size_gb=10",), 'aws_ebs_volume.data["0"]',
     "size cannot change in place (20 -> 10)", "keep compute.disk_size_gb at 20 or more"),
    (("storage.access_logs.bucket_name=dev-proton-logs-renamed",), "aws_s3_bucket.logs",
     "bucket cannot change in place ('dev-proton-data-byoc-example-logs' -> 'dev-proton-logs-renamed')",
     "set storage.access_logs.bucket_name back to 'dev-proton-data-byoc-example-logs'"),
]


@pytest.mark.parametrize(("overrides", "address", "why", "keep"), PROTECTED_CHANGES,
                         ids=["bucket-name", "zones", "encryption-off", "new-kms-key", "disk-shrink",
                              "log-bucket-name"])
def test_a_spec_change_that_replaces_protected_data_is_a_plan_error(
    applied: World, overrides: tuple[str, ...], address: str, why: str, keep: str
) -> None:
    spec = load_spec(str(ROOT / "specs/dev.yaml"), overrides)
    live = {x.address: x for k in applied.kinds.values() for x in k.discover(None)}

    def plan(**options: object) -> Plan:
        return make_plan(blueprint.build(spec, _facts(applied)), applied.state, live, rules_of(registry()),
                         cluster=spec.cluster_name, options=PlanOptions(**options))  # type: ignore[arg-type]

    with pytest.raises(PlanError) as refused:
        plan()
    text = str(refused.value)
    aws_id = applied.state.resources[address].id
    assert f"{address} ({aws_id}): {why}" in text
    assert keep in text and "nothing was changed" in text
    assert "explicit consent: --include-data deletes" in text
    if "ebs_volume" in address:
        assert "`byoc backup SPEC`" in text and "`byoc restore SPEC BACKUP_ID`" in text
    # with consent the plan goes ahead: the protected resource is replaced with what needs it
    assert plan(allow_data_loss=True).change(address).action == "replace"


def test_a_zone_added_or_reordered_keeps_the_node_with_its_volume(applied: World) -> None:
    for zones in ('["us-west-2b","us-west-2a"]', '["us-west-2a","us-west-2b","us-west-2c"]'):
        spec = load_spec(str(ROOT / "specs/dev.yaml"), (f"aws.availability_zones={zones}",))
        live = {x.address: x for k in applied.kinds.values() for x in k.discover(None)}
        plan = make_plan(blueprint.build(spec, _facts(applied)), applied.state, live, rules_of(registry()),
                         cluster=spec.cluster_name)
        assert plan.change('aws_ebs_volume.data["0"]').action == "no-op"
        assert plan.change(NODE).action == "no-op", zones


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
