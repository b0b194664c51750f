"""Golden files for rendered plans: spec + live + state → the exact plan text and JSON.

Regenerate after an intended change with ``BYOC_UPDATE_GOLDEN=1 pytest tests/test_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from byoc import blueprint
from byoc.executor import Executor
from byoc.plan import Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.render import render_plan, render_plan_json
from byoc.resources import registry, shaper
from byoc.spec import load_spec
from byoc.state.model import State
from tests.fakecloud import FakeCloud, FakeKind

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("BYOC_UPDATE_GOLDEN") == "1"


class World:
    """The real blueprint and the real kinds' replacement rules over an in-memory cloud."""

    def __init__(self) -> None:
        self.cloud = FakeCloud()
        self.kinds = {k: FakeKind(k, self.cloud, like=v) for k, v in registry().items()}
        self.state = State(cluster="x", lineage="00000000-0000-4000-8000-000000000000")

    def plan(self, spec_path: str, overrides: tuple[str, ...] = (), **kw: Any) -> Plan:
        spec = load_spec(str(ROOT / spec_path), overrides)
        live = {x.address: x for k in self.kinds.values() for x in k.discover(None)}
        return make_plan(blueprint.build(spec), self.state, live, rules_of(registry()),
                         cluster=spec.cluster_name, spec_digest="<digest>", spec_source=spec_path,
                         spec_overrides=overrides, region=spec.region, **kw)

    def apply(self, plan: Plan) -> None:
        result = Executor(self.kinds, None, self.state, lambda s: None, parallelism=1).run(plan)
        assert result.ok, [str(f.error) for f in result.failures]
        self.state = result.state


def check(name: str, plan: Plan, with_json: bool = False) -> None:
    """Compare the rendered text (and, for a few scenarios, the JSON) with the golden files."""
    outputs = [(".txt", render_plan(plan))]
    if with_json:
        data = json.loads(render_plan_json(plan, shaper()))  # one line, in the provider's shapes
        data["byoc_version"] = "<version>"
        # how many state writes an apply made depends on how they were grouped (the executor
        # writes what finished while a write was under way in the next one)
        data["byoc"]["serial"] = "<serial>"
        outputs.append((".json", json.dumps(data, indent=2) + "\n"))
    for suffix, content in outputs:
        path = GOLDEN / f"{name}{suffix}"
        if UPDATE:
            path.write_text(content)
        assert path.exists(), f"missing golden file {path}; run with BYOC_UPDATE_GOLDEN=1"
        assert content == path.read_text(), f"{path} differs; run with BYOC_UPDATE_GOLDEN=1 and review"


@pytest.fixture
def world() -> World:
    return World()


def test_dev_from_nothing(world: World) -> None:
    check("dev_create", world.plan("specs/dev.yaml"), with_json=True)


def test_dev_no_changes(world: World) -> None:
    world.apply(world.plan("specs/dev.yaml"))
    check("dev_noop", world.plan("specs/dev.yaml"))


def test_prod_changes_update_and_replace(world: World) -> None:
    world.apply(world.plan("specs/prod.yaml"))
    check("prod_changes", world.plan(
        "specs/prod.yaml",
        ("network.allowed_cidrs=[10.0.0.0/8, 192.168.0.0/16]", "tags.Team=streaming",
         "network.nat_gateway=single"),
    ))


def test_dev_destroy(world: World) -> None:
    world.apply(world.plan("specs/dev.yaml"))
    check("dev_destroy", world.plan("specs/dev.yaml", options=PlanOptions(destroy=True)))


def test_dev_replacement_cascade(world: World) -> None:
    world.apply(world.plan("specs/dev.yaml"))
    check("dev_replace", world.plan("specs/dev.yaml", ("network.vpc_cidr=10.1.0.0/16",)), with_json=True)


def test_dev_adoption_after_a_crash(world: World) -> None:
    """A run killed before its state write: what it created is adopted. Terraform 1.5+'s summary
    counts it ("2 to adopt, 0 to add, …"), and with no action symbol in the plan, no legend."""
    world.apply(world.plan("specs/dev.yaml"))
    world.state = world.state.without("aws_cloudwatch_dashboard.main").without("aws_security_group.lb")
    plan = world.plan("specs/dev.yaml")
    assert plan.adopt == ("aws_cloudwatch_dashboard.main", "aws_security_group.lb")
    check("dev_adopt", plan)
