"""The pure drift comparison: statuses, ignore rules (globs, map keys, whole resources), the
spec's value beside the state's, and the report's JSON round trip."""

from __future__ import annotations

import json

from byoc.drift import MISSING, MODIFIED, UNMANAGED, DriftReport, IgnoreRule, accept_ignored, detect
from byoc.model import Live
from byoc.state.model import ResourceState, State

NODE = 'aws_instance.node["0"]'


def world() -> tuple[State, dict[str, Live]]:
    props = {"instance_type": "t3.large", "tags": {"Name": "n", "Env": "dev"}, "user_data": "sha256:ab"}
    state = State("c", "l", 3, {
        NODE: ResourceState(NODE, "aws_instance", "i-1", props),
        "aws_vpc.main": ResourceState("aws_vpc.main", "aws_vpc", "vpc-1", {"cidr_block": "10.0.0.0/16"}),
    })
    live = {
        NODE: Live(NODE, "aws_instance", "i-1", {**props, "tags": {"Name": "n", "Env": "dev", "Owner": "bob"},
                                                 "instance_type": "t3.xlarge", "extra": 1}),
        "aws_security_group.x": Live("aws_security_group.x", "aws_security_group", "sg-9", {}),
    }
    return state, live


def test_statuses_and_attributes() -> None:
    state, live = world()
    report = detect(state, live, desired={"aws_security_group.x": {}, NODE: {"instance_type": "t3.large"}})
    assert [(r.address, r.status) for r in report.resources] == [
        (NODE, MODIFIED), ("aws_security_group.x", UNMANAGED), ("aws_vpc.main", MISSING)]
    node = report.resources[0]
    assert [(a.name, a.expected, a.actual) for a in node.attributes] == [
        ("instance_type", "t3.large", "t3.xlarge"),
        ("tags", {"Name": "n", "Env": "dev"}, {"Name": "n", "Env": "dev", "Owner": "bob"})]
    assert not node.attributes[0].has_desired  # the spec asks for what the state holds
    assert report.resources[1].adoptable and report.checked == 3 and not report.in_sync


def test_spec_value_is_shown_where_it_differs_from_the_state() -> None:
    state, live = world()
    report = detect(state, live, desired={NODE: {"instance_type": "m5.large"}})
    a = report.resources[0].attributes[0]
    assert a.has_desired and a.desired == "m5.large" and a.to_dict()["desired"] == "m5.large"


def test_a_resource_replaced_by_hand_shows_its_new_id() -> None:
    state, live = world()
    live[NODE] = Live(NODE, "aws_instance", "i-2", state.resources[NODE].props)
    (node, *_) = detect(state, live).resources
    assert [(a.name, a.expected, a.actual) for a in node.attributes] == [("id", "i-1", "i-2")]


def test_ignore_rules() -> None:
    state, live = world()
    rules = (IgnoreRule('aws_instance.node["*"]', ("tags.Owner", "instance_?ype")),
             IgnoreRule("aws_vpc.*"), IgnoreRule("aws_security_group.*"))
    report = detect(state, live, rules)
    assert report.in_sync
    assert report.ignored == (f"{NODE}: instance_type", f"{NODE}: tags",
                              "aws_security_group.x", "aws_vpc.main")
    # brackets are literal, not character classes
    assert not IgnoreRule('aws_instance.node["1"]').matches(NODE)
    assert IgnoreRule("aws_instance.*").matches(NODE) and not IgnoreRule("aws_inst").matches(NODE)
    # another tag change is still drift
    tags = {"Name": "x", "Owner": "bob"}
    live[NODE] = Live(NODE, "aws_instance", "i-1", {**live[NODE].props, "tags": tags})
    (node,) = [r for r in detect(state, live, rules).resources if r.address == NODE]
    assert [a.name for a in node.attributes] == ["tags"]


def test_accept_ignored_keeps_what_aws_has() -> None:
    after = {"tags": {"Name": "n", "Owner": "spec"}, "instance_type": "t3.large", "ami": "a"}
    actual = {"tags": {"Name": "old", "Owner": "bob", "CostCenter": "7"}, "instance_type": "m5", "ami": "b"}
    rules = (IgnoreRule("aws_*", ("tags.Owner", "tags.Cost*", "instance_type")),
             IgnoreRule("aws_vpc.*", ("ami",)))
    assert accept_ignored(NODE, after, actual, rules) == {
        "tags": {"Name": "n", "Owner": "bob", "CostCenter": "7"}, "instance_type": "m5", "ami": "a"}


def test_spec_rules_and_json_round_trip() -> None:
    rules = IgnoreRule.from_spec({"drift": {"ignore": [{"address": "aws_vpc.*", "attributes": ["*"]}]}})
    assert rules == (IgnoreRule("aws_vpc.*", ("*",)),)
    state, live = world()
    report = detect(state, live, rules, desired={NODE: {"instance_type": "m5.large"}})
    again = DriftReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert report.to_dict()["summary"] == {"modified": 1, "missing": 1, "unmanaged": 1}


def test_no_state_and_nothing_live_is_in_sync() -> None:
    assert detect(None, {}, cluster="c").in_sync


def test_values_compare_as_their_canonical_json() -> None:
    """What counts as a change is what the canonical JSON tells apart, whichever way it is found:
    a tuple and a list of the same items, or maps in another order, are the same; a boolean and a
    number, 1 and 1.5, a string and a number, or a nested value that changed are not."""
    same = {"list": [1, "a", {"k": [True, None]}], "map": {"b": 1, "a": 2}, "n": 1, "s": "x", "f": 1.5}
    also = {"list": (1, "a", {"k": (True, None)}), "map": {"a": 2, "b": 1}, "n": 1, "s": "x", "f": 1.5}
    state = State("c", "l", 1, {NODE: ResourceState(NODE, "aws_instance", "i-1", same)})
    assert detect(state, {NODE: Live(NODE, "aws_instance", "i-1", also)}).in_sync
    for name, other in (("n", True), ("n", 1.0), ("s", 1), ("list", [1, "a", {"k": [1, None]}]),
                        ("map", {"a": 2, "b": "1"}), ("map", {1: 2, "b": 1}), ("f", 1)):
        report = detect(state, {NODE: Live(NODE, "aws_instance", "i-1", {**same, name: other})})
        assert [a.name for a in report.resources[0].attributes] == [name], (name, other)
