"""The plan JSON in the layout of `terraform show -json`, as policy tools read it: the keys
checkov's terraform_plan parser and conftest/OPA policies use, checked on the plans of
specs/prod.yaml, plus two OPA-style policies written as plain JSON-path assertions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from byoc.drift import AttrDrift, DriftReport, ResourceDrift
from byoc.plan import Plan
from byoc.render import render_plan_json
from tests.test_targeting import World

ROOT = Path(__file__).resolve().parents[1]


def prod_plan(world: World, **options: Any) -> dict[str, Any]:
    from byoc import blueprint
    from byoc.planner import PlanOptions, make_plan, rules_of
    from byoc.resources import registry
    from byoc.spec import load_spec

    spec = load_spec(str(ROOT / "specs/prod.yaml"))
    live = {x.address: x for k in world.kinds.values() for x in k.discover(None)}
    plan = make_plan(blueprint.build(spec), world.state, live, rules_of(registry()),
                     cluster=spec.cluster_name, region=spec.region, options=PlanOptions(**options))
    data: dict[str, Any] = json.loads(render_plan_json(plan))
    assert Plan.from_dict(data) == plan  # the JSON is also the saved plan: it round-trips
    return data


@pytest.fixture(scope="module")
def created() -> dict[str, Any]:
    return prod_plan(World())


def test_top_level_keys(created: dict[str, Any]) -> None:
    assert created["format_version"] == "1.2" and isinstance(created["terraform_version"], str)
    for key in ("planned_values", "resource_changes", "resource_drift", "configuration"):
        assert key in created
    assert created["applyable"] is True and created["complete"] is True and created["errored"] is False
    assert created["byoc"]["cluster"] == "production-proton"


def test_resource_changes_layout(created: dict[str, Any]) -> None:
    assert len(created["resource_changes"]) > 60
    for rc in created["resource_changes"]:
        assert rc["mode"] == "managed" and rc["provider_name"] == "registry.terraform.io/hashicorp/aws"
        kind, _, rest = rc["address"].partition(".")
        assert rc["type"] == kind and rest.startswith(rc["name"])
        assert ("index" in rc) == rc["address"].endswith('"]')
        ch = rc["change"]
        assert set(ch) >= {"actions", "before", "after", "after_unknown",
                           "before_sensitive", "after_sensitive"}
        assert ch["actions"] == ["create"] and ch["before"] is None and isinstance(ch["after"], dict)
    node = next(rc for rc in created["resource_changes"] if rc["address"] == 'aws_instance.node["0"]')
    assert node["index"] == "0" and node["change"]["after_unknown"]["subnet_id"] is True
    assert "subnet_id" not in node["change"]["after"]


def test_planned_values_and_policy_documents_as_json_text(created: dict[str, Any]) -> None:
    resources = created["planned_values"]["root_module"]["resources"]
    assert {r["address"] for r in resources} == {rc["address"] for rc in created["resource_changes"]}
    role = next(r for r in resources if r["type"] == "aws_iam_role")
    assert json.loads(role["values"]["assume_role_policy"])["Statement"]  # Terraform's JSON string
    bucket = next(r for r in resources if r["type"] == "aws_s3_bucket")
    assert isinstance(bucket["values"]["policy"], str) and bucket["values"]["versioning"] is True


def test_configuration_has_one_block_per_resource_with_references(created: dict[str, Any]) -> None:
    conf = created["configuration"]
    assert conf["provider_config"]["aws"]["expressions"]["region"] == {"constant_value": "us-west-2"}
    blocks = {b["address"]: b for b in conf["root_module"]["resources"]}
    assert len(blocks) == len(conf["root_module"]["resources"])
    node = blocks["aws_instance.node"]
    assert (node["type"], node["name"]) == ("aws_instance", "node")
    assert node["for_each_expression"] == {"constant_value": ["0", "1", "2"]}
    assert "aws_iam_instance_profile.node" in node["expressions"]["iam_instance_profile"]["references"]
    assert node["expressions"]["instance_type"] == {"constant_value": "c5.2xlarge"}


def deny_imdsv1(plan: dict[str, Any]) -> list[str]:
    """deny[msg] { rc := input.resource_changes[_]; rc.type == "aws_instance";
                   rc.change.after.metadata_options.http_tokens != "required" }"""
    return [rc["address"] for rc in plan["resource_changes"] if rc["type"] == "aws_instance"
            and rc["change"]["after"]["metadata_options"]["http_tokens"] != "required"]


def deny_bucket_delete_or_public(plan: dict[str, Any]) -> list[str]:
    """deny[msg] { rc := input.resource_changes[_]; rc.type == "aws_s3_bucket";
                   rc.change.actions[_] == "delete" } — and every bucket blocks public access"""
    return [rc["address"] for rc in plan["resource_changes"] if rc["type"] == "aws_s3_bucket"
            and ("delete" in rc["change"]["actions"]
                 or not all((rc["change"]["after"] or {}).get("public_access_block", {0: False}).values()))]


def test_opa_style_policies(created: dict[str, Any]) -> None:
    assert deny_imdsv1(created) == [] and deny_bucket_delete_or_public(created) == []
    bad = json.loads(json.dumps(created))
    node = next(rc for rc in bad["resource_changes"] if rc["address"] == 'aws_instance.node["1"]')
    node["change"]["after"]["metadata_options"]["http_tokens"] = "optional"
    assert deny_imdsv1(bad) == ['aws_instance.node["1"]']
    bucket = next(rc for rc in bad["resource_changes"] if rc["type"] == "aws_s3_bucket")
    bucket["change"]["actions"] = ["delete", "create"]
    assert deny_bucket_delete_or_public(bad) == ["aws_s3_bucket.data"]


def test_resource_drift_layout() -> None:
    world = World()
    world.apply(world.plan())
    plan = world.plan()
    drifted = Plan(**{**plan.__dict__, "drift": DriftReport("dev-proton", (
        ResourceDrift("aws_vpc.main", "aws_vpc", "modified", "vpc-1",
                      (AttrDrift("tags", {"a": "1"}, {"a": "2"}),)),
        ResourceDrift("aws_cloudwatch_dashboard.main", "aws_cloudwatch_dashboard", "missing", "d"),
        ResourceDrift("aws_security_group.x", "aws_security_group", "unmanaged", "sg-1"),
    ))})
    data = json.loads(render_plan_json(drifted))
    assert [(d["address"], d["change"]["actions"]) for d in data["resource_drift"]] == [
        ("aws_vpc.main", ["update"]), ("aws_cloudwatch_dashboard.main", ["delete"])]
    assert data["resource_drift"][0]["change"]["after"] == {"id": "vpc-1", "tags": {"a": "2"}}
    assert data["byoc"]["drift"]["summary"] == {"modified": 1, "missing": 1, "unmanaged": 1}
    assert Plan.from_dict(data) == drifted
