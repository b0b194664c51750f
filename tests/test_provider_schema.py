"""The plan JSON against the Terraform AWS provider's schema (tests/data/terraform-aws-5.100-schema.json,
`terraform providers schema -json` of provider 5.100.0): every resource, companion, drift entry and
configuration block of the plans of specs/prod.yaml, specs/dev.yaml, a spec with every option on,
a replace plan and a drift plan uses only names the schema has for its type, values of the
schema's types, and the required attributes where they are known. The checker is tested on bad
examples too, so that it can fail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from byoc.drift import AttrDrift, DriftReport, ResourceDrift
from byoc.plan import Plan
from byoc.render import render_plan_json
from byoc.resources import shaper
from tests.test_golden import World

DATA = Path(__file__).parent / "data"
SCHEMA_FILE = DATA / "terraform-aws-5.100-schema.json"


@cache
def schemas() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    assert data["provider_version"] == "5.100.0"
    return {kind: s["block"] for kind, s in data["resource_schemas"].items()}


# -- the checker ----------------------------------------------------------------------------------


def type_problems(t: Any, value: Any, unknown: Any, path: str) -> list[str]:
    """What is wrong with ``value`` as a value of the schema type ``t`` (``unknown``: its
    after_unknown marks); null stands for any type, but never inside a list, set or map."""
    if unknown is True or value is None:
        return []
    if t == "string":
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if t == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if t == "bool":
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a bool"]
    if t == "dynamic":
        return []
    kind, inner = t
    marks = unknown if isinstance(unknown, list | dict) else None
    if kind in ("list", "set"):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a {kind}"]
        out = []
        for i, v in enumerate(value):
            if v is None:
                out.append(f"{path}[{i}]: null inside a {kind}")
                continue
            out += type_problems(inner, v, marks[i] if isinstance(marks, list) and i < len(marks) else None,
                                 f"{path}[{i}]")
        return out
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a map"]
        marks_m = marks if isinstance(marks, dict) else {}
        return [p for k, v in value.items() for p in (
            [f"{path}.{k}: null inside a map"] if v is None else
            type_problems(inner, v, marks_m.get(k), f"{path}.{k}"))]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        marks_d = marks if isinstance(marks, dict) else {}
        out = [f"{path}.{k}: no such attribute in the object" for k in value if k not in inner]
        out += [f"{path}.{k}: missing from the object" for k in inner if k not in value and k not in marks_d]
        for k, v in value.items():
            if k in inner:
                out += type_problems(inner[k], v, marks_d.get(k), f"{path}.{k}")
        return out
    return [f"{path}: unknown schema type {t!r}"]


def block_problems(block: Mapping[str, Any], values: Mapping[str, Any], unknown: Any, path: str,
                   *, partial: bool = False) -> list[str]:
    """What is wrong with ``values`` as a ``block`` of the schema; ``partial`` values (a drift
    entry's drifted attributes) need not hold the required ones."""
    attrs = block.get("attributes", {})
    blocks = block.get("block_types", {})
    marks = unknown if isinstance(unknown, dict) else {}
    out = []
    for name in set(values) | {k for k, v in marks.items() if v is True}:
        where = f"{path}.{name}"
        if name in attrs:
            out += type_problems(attrs[name]["type"], values.get(name), marks.get(name), where)
        elif name in blocks:
            nested = blocks[name]
            value = values.get(name)
            if marks.get(name) is True or value is None:
                continue
            items = [value] if nested["nesting_mode"] == "single" else value
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                out.append(f"{where}: a block must be a list of objects, not {value!r}")
                continue
            if nested.get("max_items") is not None and len(items) > nested["max_items"]:
                out.append(f"{where}: {len(items)} blocks, at most {nested['max_items']}")
            inner = marks.get(name) if isinstance(marks.get(name), list) else []
            for i, item in enumerate(items):
                out += block_problems(nested["block"], item, inner[i] if i < len(inner) else None,
                                      f"{where}[{i}]")
        else:
            out.append(f"{where}: no such attribute or block")
    if not partial:
        for name, a in attrs.items():
            if a.get("required") and values.get(name) is None and marks.get(name) is not True:
                out.append(f"{path}.{name}: required, but missing")
    return out


def plan_problems(plan: Mapping[str, Any]) -> list[str]:
    """Every problem of a plan JSON document against the provider's schema."""
    s = schemas()
    out: list[str] = []

    def schema_of(kind: str, where: str) -> Mapping[str, Any] | None:
        if kind not in s:
            out.append(f"{where}: type {kind} is not in the provider's schema")
        return s.get(kind)

    unknowns = {rc["address"]: rc["change"]["after_unknown"] for rc in plan["resource_changes"]}
    for r in plan["planned_values"]["root_module"]["resources"]:
        if (block := schema_of(r["type"], r["address"])) is not None:
            out += block_problems(block, r["values"], unknowns.get(r["address"]), f"planned {r['address']}")
    for rc in plan["resource_changes"]:
        if (block := schema_of(rc["type"], rc["address"])) is None:
            continue
        ch = rc["change"]
        if ch["before"] is not None:
            out += block_problems(block, ch["before"], None, f"before {rc['address']}")
        if ch["after"] is not None:
            out += block_problems(block, ch["after"], ch["after_unknown"], f"after {rc['address']}")
    for rd in plan["resource_drift"]:
        if (block := schema_of(rd["type"], rd["address"])) is None:
            continue
        for side in ("before", "after"):
            if rd["change"][side] is not None:
                out += block_problems(block, rd["change"][side], None, f"drift {side} {rd['address']}",
                                      partial=True)
    for conf in plan["configuration"]["root_module"]["resources"]:
        if (block := schema_of(conf["type"], conf["address"])) is None:
            continue
        names = set(block.get("attributes", {})) | set(block.get("block_types", {}))
        out += [f"configuration {conf['address']}.{k}: no such attribute or block"
                for k in conf["expressions"] if k not in names]
    return out


# -- the plans ------------------------------------------------------------------------------------


def rendered(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render_plan_json(plan, shaper()))
    assert Plan.from_dict(data) == plan  # companions and shapes leave the saved plan exact
    return data


@pytest.mark.parametrize("spec", ["specs/prod.yaml", "specs/dev.yaml", "tests/data/every-option.yaml",
                                  "tests/data/every-option-network.yaml"])
def test_create_plans_match_the_provider_schema(spec: str) -> None:
    data = rendered(World().plan(spec))
    assert plan_problems(data) == []
    kinds = {rc["type"] for rc in data["resource_changes"]}
    assert {"aws_s3_bucket_public_access_block", "aws_s3_bucket_ownership_controls"} <= kinds
    if spec.endswith("every-option.yaml"):
        assert {"aws_kms_key", "aws_kms_alias", "aws_sns_topic_subscription"} <= kinds
        roles = {rc["address"] for rc in data["resource_changes"] if rc["type"] == "aws_iam_role"}
        assert roles == {"aws_iam_role.node", "aws_iam_role.management", "aws_iam_role.flow_logs",
                         "aws_iam_role.replication", "aws_iam_role.rotation"}
        [data_bucket] = [rc for rc in data["resource_changes"] if rc["address"] == "aws_s3_bucket.data"]
        [conf] = data_bucket["change"]["after"]["replication_configuration"]
        assert conf["rules"][0]["status"] == "Enabled"  # what checkov's CKV_AWS_144 reads
        assert data_bucket["change"]["after_unknown"]["replication_configuration"] == [{"role": True}]


def test_every_option_spec_holds_every_kind() -> None:
    """The every-option specs (application and network load balancer) are the ones that show each
    kind byoc has (so each mapping is checked)."""
    from byoc.resources import registry

    kinds = {rc["type"] for spec in ("every-option", "every-option-network")
             for rc in rendered(World().plan(f"tests/data/{spec}.yaml"))["resource_changes"]}
    assert set(registry()) <= kinds


def drift_plan() -> Plan:
    world = World()
    world.apply(world.plan("specs/dev.yaml"))
    plan = world.plan("specs/dev.yaml")
    rule = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_block": "0.0.0.0/0",
            "description": "added by hand"}
    node_sg = plan.change("aws_security_group.node").before or {}
    bucket = plan.change("aws_s3_bucket.data").before or {}
    opened = {k: False for k in bucket["public_access_block"]}
    return Plan(**{**plan.__dict__, "drift": DriftReport("dev-proton", (
        ResourceDrift("aws_security_group.node", "aws_security_group", "modified", "sg-1",
                      (AttrDrift("ingress", node_sg["ingress"], [*node_sg["ingress"], rule]),)),
        ResourceDrift("aws_s3_bucket.data", "aws_s3_bucket", "modified", bucket["bucket"],
                      (AttrDrift("public_access_block", bucket["public_access_block"], opened),
                       AttrDrift("versioning", True, False))),
        ResourceDrift("aws_cloudwatch_dashboard.main", "aws_cloudwatch_dashboard", "missing", "d"),
    ))})


def test_drift_and_replace_plans_match_the_provider_schema() -> None:
    world = World()
    world.apply(world.plan("specs/dev.yaml"))
    replace = rendered(world.plan("specs/dev.yaml", ("network.vpc_cidr=10.1.0.0/16",)))
    assert any(rc["change"]["actions"] == ["delete", "create"] for rc in replace["resource_changes"])
    assert plan_problems(replace) == []

    drift = rendered(drift_plan())
    assert plan_problems(drift) == []
    entries = {d["address"]: d["change"] for d in drift["resource_drift"]}
    # the SSH rule opened by hand shows in the provider's shape, as policies look for it
    assert any(r["from_port"] == 22 and r["cidr_blocks"] == ["0.0.0.0/0"]
               for r in entries["aws_security_group.node"]["after"]["ingress"])
    assert entries["aws_s3_bucket.data"]["after"]["versioning"] == [{"enabled": False, "mfa_delete": False}]
    # the public access block drifted: its companion resource shows the drift
    pab = entries["aws_s3_bucket_public_access_block.data"]
    assert pab["before"]["block_public_acls"] is True and pab["after"]["block_public_acls"] is False
    assert entries["aws_cloudwatch_dashboard.main"]["after"] is None


# -- the checker can fail ---------------------------------------------------------------------------


def _one(kind: str, values: dict[str, Any], unknown: Any = None) -> list[str]:
    return block_problems(schemas()[kind], values, unknown or {}, kind)


def test_the_checker_finds_a_wrong_name_a_wrong_type_and_a_missing_required_attribute() -> None:
    assert _one("aws_vpc", {"cidr_block": "10.0.0.0/16"}) == []
    assert _one("aws_vpc", {"cidr": "10.0.0.0/16"}) == ["aws_vpc.cidr: no such attribute or block"]
    assert _one("aws_vpc", {"enable_dns_support": "true"}) == [
        "aws_vpc.enable_dns_support: 'true' is not a bool"]
    assert _one("aws_ebs_volume", {"availability_zone": "a", "size": "20"}) == [
        "aws_ebs_volume.size: '20' is not a number"]
    assert _one("aws_subnet", {"cidr_block": "10.0.0.0/20"}) == ["aws_subnet.vpc_id: required, but missing"]
    assert _one("aws_subnet", {"cidr_block": "10.0.0.0/20"}, {"vpc_id": True}) == []  # unknown is fine


def test_the_checker_finds_byoc_shapes_the_provider_does_not_have() -> None:
    # the old shapes: a rule's single cidr_block, versioning as a bool, a dashboard as an object
    rule = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_block": "0.0.0.0/0", "description": ""}
    assert _one("aws_security_group", {"ingress": [rule]}) == [
        "aws_security_group.ingress[0].cidr_block: no such attribute in the object",
        *(f"aws_security_group.ingress[0].{k}: missing from the object"
          for k in ("cidr_blocks", "ipv6_cidr_blocks", "prefix_list_ids", "security_groups", "self")),
    ]
    assert _one("aws_s3_bucket", {"versioning": True}) == [
        "aws_s3_bucket.versioning: a block must be a list of objects, not True"]
    assert _one("aws_cloudwatch_dashboard", {"dashboard_name": "d", "dashboard_body": {"widgets": []}}) == [
        "aws_cloudwatch_dashboard.dashboard_body: {'widgets': []} is not a string"]
    assert _one("aws_lb_target_group", {"deregistration_delay": 30}) == [
        "aws_lb_target_group.deregistration_delay: 30 is not a string"]
    assert _one("aws_instance", {"vpc_security_group_ids": ["sg-1", None]}) == [
        "aws_instance.vpc_security_group_ids[1]: null inside a set"]
    assert _one("aws_instance", {"metadata_options": [{"http_tokens": "required"}] * 2}) == [
        "aws_instance.metadata_options: 2 blocks, at most 1"]


def test_the_checker_reads_a_whole_plan() -> None:
    data = rendered(World().plan("specs/dev.yaml"))
    bad = json.loads(json.dumps(data))
    vpc = next(r for r in bad["planned_values"]["root_module"]["resources"] if r["type"] == "aws_vpc")
    vpc["values"]["cidr"] = vpc["values"].pop("cidr_block")
    sg = next(rc for rc in bad["resource_changes"] if rc["address"] == "aws_security_group.lb")
    sg["change"]["after"]["ingress"][0]["from_port"] = "8123"
    conf = next(c for c in bad["configuration"]["root_module"]["resources"] if c["type"] == "aws_lb")
    conf["expressions"]["listeners"] = {"constant_value": []}
    bad["resource_changes"].append({**sg, "type": "aws_security_group_x"})
    assert plan_problems(bad) == [
        "planned aws_vpc.main.cidr: no such attribute or block",
        "after aws_security_group.lb.ingress[0].from_port: '8123' is not a number",
        "aws_security_group.lb: type aws_security_group_x is not in the provider's schema",
        "configuration aws_lb.main.listeners: no such attribute or block",
    ]
