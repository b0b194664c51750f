"""The plan JSON in the layout of `terraform show -json`, as policy tools read it: the keys
checkov's terraform_plan parser and conftest/OPA policies use, checked on the plans of
specs/prod.yaml, plus two OPA-style policies written as plain JSON-path assertions. The values take
the AWS provider's shapes (tests/test_provider_schema.py checks them against its schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from byoc.drift import AttrDrift, DriftReport, ResourceDrift
from byoc.plan import Plan
from byoc.render import render_plan_json
from byoc.resources import shaper
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
    text = render_plan_json(plan, shaper())
    assert text.count("\n") == 1 and text.endswith("}\n")  # one line, as Terraform prints it
    data: dict[str, Any] = json.loads(text)
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
    # byoc's keyed instances are Terraform's for_each instances: the key is a string
    assert node["index"] == "0" and node["change"]["after_unknown"]["subnet_id"] is True
    assert "subnet_id" not in node["change"]["after"]
    assert node["change"]["after_sensitive"]["metadata_options"] == [{}]
    assert node["change"]["before_sensitive"] is False


def test_planned_values_and_policy_documents_as_json_text(created: dict[str, Any]) -> None:
    resources = created["planned_values"]["root_module"]["resources"]
    assert {r["address"] for r in resources} == {rc["address"] for rc in created["resource_changes"]}
    role = next(r for r in resources if r["type"] == "aws_iam_role")
    assert json.loads(role["values"]["assume_role_policy"])["Statement"]  # Terraform's JSON string
    bucket = next(r for r in resources if r["type"] == "aws_s3_bucket")
    assert isinstance(bucket["values"]["policy"], str)
    assert bucket["values"]["versioning"] == [{"enabled": True, "mfa_delete": False}]


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
                   rc.change.after.metadata_options[_].http_tokens != "required" }"""
    return [rc["address"] for rc in plan["resource_changes"] if rc["type"] == "aws_instance"
            and any(m["http_tokens"] != "required" for m in rc["change"]["after"]["metadata_options"])]


def deny_bucket_delete_or_public(plan: dict[str, Any]) -> list[str]:
    """deny[msg] { rc := input.resource_changes[_]; rc.type == "aws_s3_bucket";
                   rc.change.actions[_] == "delete" } — and every bucket has a public access block
    (the provider's own resource) that blocks everything"""
    blocks = {rc["change"]["after"]["bucket"]: rc["change"]["after"] for rc in plan["resource_changes"]
              if rc["type"] == "aws_s3_bucket_public_access_block" and rc["change"]["after"]}
    return [rc["address"] for rc in plan["resource_changes"] if rc["type"] == "aws_s3_bucket"
            and ("delete" in rc["change"]["actions"]
                 or not all(v for k, v in blocks.get(rc["change"]["after"]["bucket"], {0: False}).items()
                            if k != "bucket"))]


def test_opa_style_policies(created: dict[str, Any]) -> None:
    assert deny_imdsv1(created) == [] and deny_bucket_delete_or_public(created) == []
    bad = json.loads(json.dumps(created))
    node = next(rc for rc in bad["resource_changes"] if rc["address"] == 'aws_instance.node["1"]')
    node["change"]["after"]["metadata_options"][0]["http_tokens"] = "optional"
    assert deny_imdsv1(bad) == ['aws_instance.node["1"]']
    pab = next(rc for rc in bad["resource_changes"]
               if rc["address"] == "aws_s3_bucket_public_access_block.data")
    pab["change"]["after"]["restrict_public_buckets"] = False
    assert deny_bucket_delete_or_public(bad) == ["aws_s3_bucket.data"]
    pab["change"]["after"]["restrict_public_buckets"] = True
    bucket = next(rc for rc in bad["resource_changes"] if rc["address"] == "aws_s3_bucket.data")
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


def test_provider_shapes(created: dict[str, Any]) -> None:
    """The shapes the provider's schema has, where byoc's props differ (issue 15)."""
    after = {rc["address"]: rc["change"]["after"] for rc in created["resource_changes"]}
    unknown = {rc["address"]: rc["change"]["after_unknown"] for rc in created["resource_changes"]}
    ssh = next(r for r in after["aws_security_group.node"]["ingress"] if r["from_port"] == 22)
    assert ssh == {"cidr_blocks": ["10.0.0.0/8"], "description": "SSH from allowed network", "from_port": 22,
                   "ipv6_cidr_blocks": [], "prefix_list_ids": [], "protocol": "tcp", "security_groups": [],
                   "self": False, "to_port": 22}
    # a rule naming the load balancer's group (not made yet): that list is unknown as a whole
    from_lb = [i for i, r in enumerate(after["aws_security_group.node"]["ingress"])
               if r["description"].endswith("from the load balancer")]
    assert from_lb and all("security_groups" not in after["aws_security_group.node"]["ingress"][i]
                           and unknown["aws_security_group.node"]["ingress"][i] == {"security_groups": True}
                           for i in from_lb)
    lb_rules = after["aws_security_group.lb"]["ingress"]  # one rule object per port, cidrs gathered
    assert sorted((r["from_port"], tuple(r["cidr_blocks"])) for r in lb_rules) == [
        (3218, ("10.0.0.0/8",)), (8123, ("10.0.0.0/8",))]
    sse = after["aws_s3_bucket.logs"]["server_side_encryption_configuration"]
    assert sse[0]["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    sse = after["aws_s3_bucket.data"]["server_side_encryption_configuration"]  # prod's own key
    assert sse[0]["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert unknown["aws_s3_bucket.data"]["server_side_encryption_configuration"] == [
        {"rule": [{"apply_server_side_encryption_by_default": [{"kms_master_key_id": True}]}]}]
    assert after["aws_s3_bucket.data"]["lifecycle_rule"][0]["expiration"] == [
        {"days": 30, "date": "", "expired_object_delete_marker": False}]
    assert "public_access_block" not in after["aws_s3_bucket.data"]
    role = after["aws_iam_role.node"]
    assert [p["name"] for p in role["inline_policy"]] == ["proton-node"]
    assert unknown["aws_iam_role.node"]["inline_policy"] == [{"policy": True}]  # it names the log group
    assert after["aws_lb_target_group.main[\"8123\"]"]["deregistration_delay"] == "30"
    assert after["aws_lb_target_group.main[\"8123\"]"]["health_check"][0]["path"] == "/"
    assert after['aws_lb_listener.main["8123"]']["default_action"] == [{"type": "forward", "order": 1}]
    assert unknown['aws_lb_listener.main["8123"]']["default_action"] == [{"target_group_arn": True}]
    # a JSON document with an unknown part is unknown as a whole: never a null inside the text
    assert "dashboard_body" not in after["aws_cloudwatch_dashboard.main"]
    assert unknown["aws_cloudwatch_dashboard.main"]["dashboard_body"] is True
    assert unknown['aws_cloudwatch_metric_alarm.cpu["0"]']["alarm_actions"] is True
    assert "null" not in json.dumps([rc["change"]["after"] for rc in created["resource_changes"]
                                     if rc["type"] == "aws_security_group"])


def test_companions_beside_their_owner_and_out_of_the_saved_plan(created: dict[str, Any]) -> None:
    changes = [rc["address"] for rc in created["resource_changes"]]
    at = changes.index("aws_s3_bucket.data")
    assert changes[at + 1:at + 3] == ["aws_s3_bucket_public_access_block.data",
                                      "aws_s3_bucket_ownership_controls.data"]
    pab = created["resource_changes"][at + 1]
    assert pab["byoc"] == {"companion_of": "aws_s3_bucket.data"} and pab["change"]["actions"] == ["create"]
    assert pab["change"]["after"] == {"bucket": "my-company-proton-data", "block_public_acls": True,
                                      "block_public_policy": True, "ignore_public_acls": True,
                                      "restrict_public_buckets": True}
    planned = {r["address"]: r for r in created["planned_values"]["root_module"]["resources"]}
    assert planned["aws_s3_bucket_public_access_block.data"]["byoc"] == {"companion_of": "aws_s3_bucket.data"}
    conf = {b["address"]: b for b in created["configuration"]["root_module"]["resources"]}
    assert conf["aws_s3_bucket_public_access_block.data"]["expressions"]["bucket"] == {
        "references": ["aws_s3_bucket.data.id", "aws_s3_bucket.data"]}
    # the summary counts byoc's changes, not companions; and the saved plan drops them
    companions = [rc for rc in created["resource_changes"] if "companion_of" in rc.get("byoc", {})]
    assert {rc["address"] for rc in companions} >= {"aws_s3_bucket_public_access_block.data",
                                                      "aws_s3_bucket_public_access_block.logs"}
    assert created["byoc"]["summary"]["add"] == len(changes) - len(companions)
    assert all(c.address != "aws_s3_bucket_public_access_block.data"
               for c in Plan.from_dict(created).changes)


def test_bucket_events_are_the_providers_notification_companion(created: dict[str, Any]) -> None:
    """Each bucket's notification configuration is ``aws_s3_bucket_notification.<name>`` referencing
    the bucket (checkov's CKV2_AWS_62 looks for that connection), not an attribute of the bucket."""
    from byoc.model import UNKNOWN
    from byoc.resources.s3_bucket import KIND

    by_address = {rc["address"]: rc for rc in created["resource_changes"]}
    conf = {b["address"]: b for b in created["configuration"]["root_module"]["resources"]}
    for name, bucket in (("data", "my-company-proton-data"), ("logs", "my-company-proton-data-logs")):
        rc = by_address[f"aws_s3_bucket_notification.{name}"]
        assert rc["byoc"] == {"companion_of": f"aws_s3_bucket.{name}"}
        assert rc["change"]["actions"] == ["create"]
        assert rc["change"]["after"] == {"bucket": bucket, "eventbridge": True, "lambda_function": [],
                                         "queue": [], "topic": []}
        assert conf[f"aws_s3_bucket_notification.{name}"]["expressions"]["bucket"] == {
            "references": [f"aws_s3_bucket.{name}.id", f"aws_s3_bucket.{name}"]}
        assert "notification" not in by_address[f"aws_s3_bucket.{name}"]["change"]["after"]
    off = {"eventbridge": False, "lambda_function": [], "queue": [], "topic": []}
    # no events: no notification resource (as a configuration without one; CKV2_AWS_62 then fails)
    assert KIND.provider_companions({"bucket": "b", "notification": off}, None) == []
    topic = {"id": "t", "topic_arn": "arn:aws:sns:us-west-2:123456789012:t", "events": ["s3:ObjectRemoved:*"],
             "filter_prefix": "", "filter_suffix": ""}
    [by_hand] = KIND.provider_companions({"bucket": "b", "notification": {**off, "topic": [topic]}}, None)
    assert by_hand.values == {"bucket": "b", **off, "topic": [topic]}
    [unknown] = KIND.provider_companions({"notification": UNKNOWN}, "b")
    assert unknown.values == {"bucket": "b", **dict.fromkeys(off, UNKNOWN)}


def test_pretty_and_no_shaper() -> None:
    from byoc.model import UNKNOWN, Ref
    from byoc.plan import Change

    plan = Plan("c", None, 0, "d", "s", (), (Change(
        "aws_iam_role.r", "aws_iam_role", "create", "new", None,
        {"name": "r", "assume_role_policy": {"Version": "2012-10-17", "Statement": []}, "x": [UNKNOWN]},
        {"name": "r", "x": [Ref("aws_vpc.v")]}),))
    pretty = render_plan_json(plan, pretty=True)
    assert pretty.count("\n") > 10 and json.loads(pretty) == json.loads(render_plan_json(plan))
    after = json.loads(pretty)["resource_changes"][0]["change"]
    # without a shaper values pass through, policy documents as JSON text, unknown lists whole
    assert after["after"] == {"name": "r", "assume_role_policy": '{"Statement":[],"Version":"2012-10-17"}'}
    assert after["after_unknown"] == {"x": True}


def test_the_created_key_encrypts_the_log_groups_and_its_policy_is_json_text(created: dict[str, Any]) -> None:
    """prod creates its key: both log groups take its ARN (unknown until it exists, a reference in
    the configuration), and the key's policy is the provider's JSON string."""
    changes = {rc["address"]: rc["change"] for rc in created["resource_changes"]}
    config = {r["address"]: r["expressions"] for r in created["configuration"]["root_module"]["resources"]}
    for group in ("aws_cloudwatch_log_group.main", "aws_cloudwatch_log_group.flow_logs"):
        assert changes[group]["after_unknown"]["kms_key_id"] is True
        assert changes[group]["after"].get("kms_key_id") is None
        assert config[group]["kms_key_id"]["references"][0] == "aws_kms_key.main.arn"
    policy = json.loads(changes["aws_kms_key.main"]["after"]["policy"])
    (logs,) = [s for s in policy["Statement"] if "Service" in s.get("Principal", {})]
    assert logs["Principal"] == {"Service": ["logs.us-west-2.amazonaws.com"]}
