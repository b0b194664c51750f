"""The pure planner against an in-memory fake cloud."""

from __future__ import annotations

from typing import Any

import pytest

from byoc.errors import PlanError
from byoc.model import UNKNOWN, Live, Ref
from byoc.plan import CREATE, DELETE, NOOP, REPLACE, UPDATE, Plan
from byoc.planner import KindRules, PlanOptions, make_plan, rules_of
from byoc.state.model import ResourceState, State
from tests.fakecloud import FakeCloud, kinds, res

RULES = rules_of(kinds(FakeCloud()))


def desired(cidr: str = "10.0.0.0/16", sub_cidr: str = "10.0.1.0/24", name: str = "a") -> list[Any]:
    return [
        res("fake_net.main", cidr=cidr, name=name),
        res('fake_sub.private["a"]', net_id=Ref("fake_net.main"), cidr=sub_cidr),
        res("fake_vm.node", sub_id=Ref('fake_sub.private["a"]'), size="m5"),
    ]


def live_of(**ids: str) -> dict[str, Live]:
    net = Live("fake_net.main", "fake_net", ids.get("net", "n-1"), {"cidr": "10.0.0.0/16", "name": "a"})
    sub = Live('fake_sub.private["a"]', "fake_sub", "s-1", {"net_id": net.id, "cidr": "10.0.1.0/24"})
    vm = Live("fake_vm.node", "fake_vm", "v-1", {"sub_id": "s-1", "size": "m5"})
    return {x.address: x for x in (net, sub, vm)}


def plan(resources: list[Any], state: State | None, live: dict[str, Live], **kw: Any) -> Plan:
    return make_plan(resources, state, live, RULES, cluster="c1", **kw)


def actions(p: Plan) -> dict[str, str]:
    return {c.address: c.action for c in p.changes}


def test_empty_world_creates_everything_with_unknown_references() -> None:
    p = plan(desired(), None, {})
    assert set(actions(p).values()) == {CREATE}
    sub = p.change('fake_sub.private["a"]')
    assert sub.after is not None and sub.after["net_id"] is UNKNOWN
    assert sub.depends_on == ("fake_net.main",)
    assert p.counts() == {"add": 3, "change": 0, "destroy": 0}


def test_matching_world_is_a_noop_with_reasons() -> None:
    p = plan(desired(), None, live_of())
    assert set(actions(p).values()) == {NOOP}
    assert not p.actionable and p.adopt == tuple(sorted(live_of()))  # no state: apply records them
    assert all(c.reason == "up to date" for c in p.changes)


def test_in_place_change_is_an_update_naming_the_attribute() -> None:
    p = plan(desired(name="b"), None, live_of())
    c = p.change("fake_net.main")
    assert c.action == UPDATE and c.reason == "name changed"
    assert [(a.name, a.before, a.after, a.forces_replacement) for a in c.attributes] == [
        ("name", "a", "b", False)
    ]
    assert actions(p)['fake_sub.private["a"]'] == NOOP


def test_force_new_change_replaces_and_cascades_to_dependents() -> None:
    p = plan(desired(cidr="10.1.0.0/16"), None, live_of())
    a = actions(p)
    assert a["fake_net.main"] == REPLACE
    # the subnet's net_id becomes unknown and net_id forces replacement, and so on down
    assert a['fake_sub.private["a"]'] == REPLACE
    assert a["fake_vm.node"] == REPLACE
    assert p.change("fake_net.main").reason == "cidr cannot be changed in place"
    assert p.counts() == {"add": 3, "change": 0, "destroy": 3}


def test_missing_from_aws_but_in_state_is_recreated_with_reason() -> None:
    live = live_of()
    del live["fake_vm.node"]
    st = State.new("c1").with_resource(ResourceState("fake_vm.node", "fake_vm", "v-1", {}))
    p = plan(desired(), st, live)
    c = p.change("fake_vm.node")
    assert c.action == CREATE and "deleted outside byoc" in c.reason


def test_no_longer_desired_in_state_is_deleted_but_unmanaged_is_only_listed() -> None:
    live = live_of()
    extra = Live("fake_vm.old", "fake_vm", "v-9", {"sub_id": "s-1", "size": "m5"})
    orphan = Live("fake_vm.orphan", "fake_vm", "v-8", {"sub_id": "s-1", "size": "m5"})
    live.update({extra.address: extra, orphan.address: orphan})
    st = State.new("c1").with_resource(ResourceState("fake_vm.old", "fake_vm", "v-9", {}))
    p = plan(desired(), st, live)
    assert actions(p)["fake_vm.old"] == DELETE
    assert "fake_vm.orphan" not in actions(p)
    assert p.unmanaged == ("fake_vm.orphan",)


def test_state_entries_gone_from_aws_are_forgotten() -> None:
    st = State.new("c1").with_resource(ResourceState("fake_vm.gone", "fake_vm", "v-7", {}))
    p = plan(desired(), st, live_of())
    assert p.forget == ("fake_vm.gone",)
    assert p.has_changes


def test_destroy_deletes_everything_owned_with_inferred_order() -> None:
    live = live_of()
    p = plan(desired(), None, live, options=PlanOptions(destroy=True))
    assert set(actions(p).values()) == {DELETE}
    # no state: ordering comes from the blueprint
    assert p.change('fake_sub.private["a"]').old_depends_on == ("fake_net.main",)
    assert p.change("fake_vm.node").old_depends_on == ('fake_sub.private["a"]',)
    # neither state nor spec knows them: ordering is inferred from the AWS ids in their props
    # (never from tags, which name the cluster and would tie everything together)
    tagged = {a: Live(x.address, x.kind, x.id, {**x.props, "tags": {"c": "n-1"}}) for a, x in live.items()}
    p = plan([], None, tagged, options=PlanOptions(destroy=True))
    assert p.change('fake_sub.private["a"]').old_depends_on == ("fake_net.main",)
    assert p.change("fake_vm.node").old_depends_on == ('fake_sub.private["a"]',)
    assert p.change("fake_net.main").old_depends_on == ()


def test_protected_resources_are_never_deleted_or_replaced_without_the_flag() -> None:
    disk = Live("fake_disk.data", "fake_disk", "d-1", {"size": 10})
    live = {**live_of(), disk.address: disk}
    st = State.new("c1").with_resource(ResourceState("fake_disk.data", "fake_disk", "d-1", {}))
    p = plan(desired(), st, live, options=PlanOptions(destroy=True))
    assert "fake_disk.data" not in actions(p)
    assert any("fake_disk.data" in r and "holds data" in r for r in p.refused)
    # replacing it is an error for the whole plan, naming it, why, and the ways forward
    wanted = [*desired(), res("fake_disk.data", size=20)]
    with pytest.raises(PlanError) as refused:
        plan(wanted, st, live)
    assert "fake_disk.data (d-1): size cannot change in place (10 -> 20)" in str(refused.value)
    assert "--include-data" in str(refused.value) and "keep size at 10" in str(refused.value)
    # and allowed with the flag
    p = plan(wanted, st, live, options=PlanOptions(allow_data_loss=True))
    assert actions(p)["fake_disk.data"] == REPLACE


def test_plan_round_trips_through_json() -> None:
    import json

    p = plan(desired(cidr="10.1.0.0/16"), None, live_of())
    again = Plan.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p


def test_terraform_layout_marks_unknowns() -> None:
    p = plan(desired(), None, {})
    d = p.to_dict()
    assert d["format_version"] == "1.2"
    rc = {c["address"]: c for c in d["resource_changes"]}
    sub = rc['fake_sub.private["a"]']
    assert sub["type"] == "fake_sub" and sub["name"] == "private" and sub["index"] == "a"
    assert sub["change"]["actions"] == ["create"]
    assert "net_id" not in sub["change"]["after"]
    assert sub["change"]["after_unknown"] == {"net_id": True}
    assert {r["address"] for r in d["planned_values"]["root_module"]["resources"]} == set(rc)


def test_a_pinning_reference_to_a_replaced_resource_replaces_the_holder() -> None:
    rules = {**RULES, "fake_vm": KindRules(pins=frozenset({"sub_id"}))}
    wanted = desired(sub_cidr="10.0.2.0/24")
    p = make_plan(wanted, None, live_of(), rules, cluster="c1")
    assert actions(p)['fake_sub.private["a"]'] == REPLACE
    # the VM pins its subnet: it is replaced (deleted before the subnet), not updated after
    assert actions(p)["fake_vm.node"] == REPLACE
    p = make_plan(wanted, None, live_of(), {**rules, "fake_vm": KindRules()}, cluster="c1")
    assert actions(p)["fake_vm.node"] == UPDATE


def test_join_and_sorted_resolve_after_their_references() -> None:
    from byoc.model import Join, Sorted, from_jsonable, substitute, to_jsonable, walk_refs

    value = {"arn": Join(("arn:", Ref("a.x", "arn"), "/*")), "ids": Sorted((Ref("b.y"), Ref("a.x")))}
    assert {r.address for r in walk_refs(value)} == {"a.x", "b.y"}
    known = {"a.x": {"arn": "A", "id": "z-2"}, "b.y": {"id": "a-1"}}
    out = substitute(value, lambda r: known[r.address][r.attr])
    assert out == {"arn": "arn:A/*", "ids": ["a-1", "z-2"]}
    part = substitute(value, lambda r: UNKNOWN if r.address == "a.x" else known[r.address][r.attr])
    assert part["arn"] is UNKNOWN
    assert from_jsonable(to_jsonable(value)) == value


def test_hashed_props_compare_by_digest() -> None:
    import hashlib

    ud = frozenset({"user_data"})
    rules = {**RULES, "fake_vm": KindRules(force_new=ud, hashed=ud)}
    digest = "sha256:" + hashlib.sha256(b"#!/bin/bash\necho hi\n").hexdigest()
    live = live_of()
    vm = live["fake_vm.node"]
    live["fake_vm.node"] = Live(vm.address, vm.kind, vm.id, {**vm.props, "user_data": digest})
    wanted = [*desired()[:2], res("fake_vm.node", sub_id=Ref('fake_sub.private["a"]'), size="m5",
                                  user_data="#!/bin/bash\necho hi\n")]
    assert actions(make_plan(wanted, None, live, rules, cluster="c1"))["fake_vm.node"] == NOOP
    wanted[2] = res("fake_vm.node", sub_id=Ref('fake_sub.private["a"]'), size="m5", user_data="echo bye")
    p = make_plan(wanted, None, live, rules, cluster="c1")
    assert actions(p)["fake_vm.node"] == REPLACE
    assert p.change("fake_vm.node").after["user_data"].startswith("sha256:")  # type: ignore[index]
