"""Cost estimates (pure): the price table, a cluster's estimate, a plan's before/after and footer,
and right-sizing suggestions."""

# ruff: noqa: RUF001, RUF003  (the rendered text uses the multiplication sign)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from byoc import blueprint
from byoc.cost import (
    FAMILY_SIZES,
    SIZES,
    Estimate,
    Line,
    Usage,
    estimate,
    footer,
    load_prices,
    plan_cost,
    render_estimate,
    suggest,
)
from byoc.executor import Executor
from byoc.model import UNKNOWN, Ref, Resource
from byoc.plan import CREATE, DELETE, NOOP, REPLACE, UPDATE, Change, Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.resources import registry
from byoc.spec import load_spec
from byoc.state.model import State
from tests.fakecloud import FakeCloud, FakeKind

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1")
#: byoc's reference table (seed-proton-byoc-aws.md, "Instance Type Selection Guide")
REFERENCE = {
    "t3.large": 0.0832, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68, "r5.2xlarge": 0.504,
}


def res(kind: str, name: str = "x", **props: Any) -> Resource:
    return Resource(f"{kind}.{name}", kind, props)


def instance(itype: Any = "c5.2xlarge", spot: Any = False, root: Any = 30, name: str = "x") -> Resource:
    rbd = {"volume_size": root, "volume_type": "gp3"} if root is not None else None
    return res("aws_instance", name, instance_type=itype, spot=spot, root_block_device=rbd)


def items(e: Estimate) -> dict[str, Line]:
    return {line.item: line for line in e.lines}


# -- the table ------------------------------------------------------------------------------

def test_price_table_has_every_region_and_type_and_the_reference_prices() -> None:
    t = load_prices()
    assert t["as_of"] == "2026-11-01" and t["currency"] == "USD" and t["hours_per_month"] == 730
    assert set(REGIONS) <= set(t["regions"])
    keys = {k for k in t["regions"]["us-east-1"] if k != "note"}
    types = set(t["regions"]["us-east-1"]["ec2_hourly"])
    assert {*REFERENCE, "t3.medium", "c5.9xlarge", "m5.4xlarge", "r5.4xlarge", "c6g.2xlarge"} <= types
    for region in REGIONS:
        prices = t["regions"][region]
        assert {k for k in prices if k != "note"} == keys, region
        assert set(prices["ec2_hourly"]) == types, region
        assert all(v > 0 for v in prices["ec2_hourly"].values())
    for region in ("us-east-1", "us-west-2"):
        for itype, hourly in REFERENCE.items():
            assert t["regions"][region]["ec2_hourly"][itype] == hourly
    assert t["regions"]["eu-west-1"]["ec2_hourly"]["c5.2xlarge"] > REFERENCE["c5.2xlarge"]
    assert "note" in t["regions"]["eu-west-1"]  # scaled prices say so
    assert all(entry["note"] for entry in t["nominal"].values())
    assert t["nominal"]["s3_gb"]["value"] == 100
    assert load_prices() is t  # cached


# -- a cluster's estimate -------------------------------------------------------------------

def test_prod_spec_total_is_the_hand_computed_sum_of_the_table() -> None:
    spec = load_spec(str(ROOT / "specs/prod.yaml"))
    e = estimate(blueprint.build(spec), "us-west-2")
    hand = (
        3 * 0.34 * 730            # 3 × c5.2xlarge on-demand
        + 3 * 30 * 0.08           # 3 root volumes, gp3 30 GB
        + 3 * 500 * 0.08          # 3 data volumes, gp3 500 GB (3000 IOPS, 125 MB/s included)
        + 3 * 0.045 * 730         # a NAT gateway per AZ
        + 3 * 0.005 * 730         # and its Elastic IP
        + (0.0225 + 0.008) * 730  # the ALB with a nominal LCU
        + 2 * 100 * 0.023         # S3 at a nominal 100 GB: the data bucket and the log bucket
        + 3 * 2.10                # detailed monitoring per node
        + 2 * 5 * 0.50            # the nodes' and the flow logs' groups at a nominal 5 GB ingested
        + 11 * 0.10               # alarms: 3 per node + unhealthy hosts on 2 ports
        + 3.00                    # the dashboard
        + 0.40                    # the admin secret
        + 1.00                    # the cluster's own KMS key (security.encryption.create_kms_key)
    )
    assert e.total == pytest.approx(hand, abs=0.01)
    assert e.total == pytest.approx(sum(line.monthly for line in e.lines))
    assert items(e)["3 × c5.2xlarge on-demand"] == Line("3 × c5.2xlarge on-demand", 744.6, "$0.34/h × 730 h")
    assert items(e)["11 × CloudWatch alarm"].monthly == pytest.approx(1.1)
    monitoring = Line("3 × EC2 detailed monitoring", 6.3, "$2.10/month each")
    assert items(e)[monitoring.item] == monitoring
    assert items(e)["1 × KMS key"].monthly == pytest.approx(1.0)
    assert e.region == e.priced_region == "us-west-2" and e.as_of == "2026-11-01" and not e.unpriced
    assert any("nominal 100 GB" in n for n in e.approximate_notes)
    assert any("data transfer is not counted" in n for n in e.approximate_notes)


def test_spot_instances_are_priced_at_the_discount() -> None:
    spec = load_spec(str(ROOT / "specs/prod.yaml"), ["compute.spot=true"])
    e = estimate(blueprint.build(spec), "us-west-2")
    line = items(e)["3 × c5.2xlarge spot"]
    assert line.monthly == pytest.approx(3 * 0.34 * 0.35 * 730, abs=0.01)
    assert "less 65%" in line.detail
    assert not any("on-demand" in item for item in items(e))
    assert any("spot" in n for n in e.approximate_notes)


def test_unknown_instance_type_is_a_price_unknown_line_not_an_error() -> None:
    e = estimate([instance("c9.huge", root=None), instance("c5.xlarge", name="y", root=None)], "us-east-1")
    assert items(e)["1 × c9.huge on-demand"] == Line("1 × c9.huge on-demand", 0.0, "price unknown")
    assert e.total == pytest.approx(0.17 * 730)
    assert e.unpriced == ("instance type c9.huge in us-east-1",)
    assert any("c9.huge" in n and "left out of the total" in n for n in e.approximate_notes)


def test_region_not_in_the_table_is_priced_as_us_east_1_and_says_so() -> None:
    e = estimate([instance("c5.2xlarge", root=None)], "ap-south-1")
    assert e.region == "ap-south-1" and e.priced_region == "us-east-1"
    assert e.total == pytest.approx(0.34 * 730)
    assert e.approximate_notes[0] == "ap-south-1 is not in byoc's price table: us-east-1 prices used"
    assert "for ap-south-1, priced as us-east-1" in footer(e, e)


def test_other_regions_use_their_own_prices() -> None:
    t = load_prices()["regions"]["ap-northeast-1"]
    e = estimate([instance("c5.2xlarge", root=None), res("aws_nat_gateway")], "ap-northeast-1")
    assert e.total == pytest.approx((t["ec2_hourly"]["c5.2xlarge"] + t["nat_gateway_hourly"]) * 730, abs=0.01)
    assert e.approximate_notes[0] == t["note"]


def test_values_known_only_after_apply_count_as_absent() -> None:
    e = estimate([
        instance(UNKNOWN, root=UNKNOWN),
        res("aws_ebs_volume", "d", size=UNKNOWN, type="gp3", iops=3000, throughput=125),
        res("aws_lb", load_balancer_type=Ref("aws_x.y", "type")),
        res("aws_nat_gateway", allocation_id=UNKNOWN),
    ], "us-west-2")
    assert e.total == pytest.approx(0.045 * 730)
    assert [line.detail for line in e.lines if line.monthly == 0] == ["price unknown"] * 4  # root too
    assert e.unpriced == (
        "an instance whose type is not known yet",
        "an EBS volume whose size is not known yet",
        "a load balancer whose type is not known yet",
    )
    absent = estimate([instance("c5.large", root=UNKNOWN), res("aws_instance", "y", instance_type="c5.large",
                                                           root_block_device=UNKNOWN)], "us-west-2")
    assert [line.item for line in absent.lines] == [
        "2 × c5.large on-demand", "1 × root volume gp3 (size not known yet)",
    ]


def test_gp3_volumes_pay_for_iops_and_throughput_above_the_included() -> None:
    e = estimate([res("aws_ebs_volume", size=1000, type="gp3", iops=6000, throughput=250)], "us-east-1")
    line = e.lines[0]
    assert line.monthly == pytest.approx(1000 * 0.08 + 3000 * 0.005 + 125 * 0.04)
    assert line.detail == "1000 GB × $0.08/GB-month + 3,000 IOPS × $0.005 + 125 MB/s × $0.04"


def test_each_priced_kind_and_the_free_ones() -> None:
    e = estimate([
        res("aws_lb", load_balancer_type="network"), res("aws_kms_key"), res("aws_eip"),
        res("aws_secretsmanager_secret"), res("aws_vpc", cidr_block="10.0.0.0/16"), res("aws_iam_role"),
        res("aws_lb_target_group"), res("aws_sns_topic"),
    ], "us-east-1")
    assert {line.item: line.monthly for line in e.lines} == {
        "1 × public IPv4 address (Elastic IP)": pytest.approx(3.65),
        "1 × network load balancer": pytest.approx((0.0225 + 0.006) * 730, abs=0.01),
        "1 × KMS key": 1.0,
        "1 × Secrets Manager secret": 0.4,
    }
    assert estimate([], "us-east-1").total == 0


# -- a plan's cost --------------------------------------------------------------------------

def _plan(*changes: Change) -> Plan:
    return Plan(cluster="c", lineage=None, serial=0, spec_digest="", spec_source="", spec_overrides=(),
                changes=changes, region="us-east-1")


def _change(address: str, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Change:
    kind = address.split(".")[0]
    return Change(address, kind, action, "test", before=before, after=after)


def test_plan_cost_counts_each_action_on_the_right_side() -> None:
    c5x = {"instance_type": "c5.xlarge", "spot": False}
    c52x = {"instance_type": "c5.2xlarge", "spot": False}
    p = _plan(
        _change("aws_instance.created", CREATE, None, c5x),
        _change("aws_instance.deleted", DELETE, c5x, None),
        _change("aws_instance.replaced", REPLACE, c5x, c52x),
        _change("aws_instance.updated", UPDATE, c5x, {**c5x, "spot": True}),
        _change("aws_instance.same", NOOP, c52x, c52x),
        _change("aws_nat_gateway.refused", NOOP, {"subnet_id": "s-1"}, {"subnet_id": UNKNOWN}),
    )
    before, after = plan_cost(p, "us-east-1")
    nat = 0.045 * 730
    assert before.total == pytest.approx((3 * 0.17 + 0.34) * 730 + nat, abs=0.01)
    assert after.total == pytest.approx((0.17 + 0.34 + 0.17 * 0.35 + 0.34) * 730 + nat, abs=0.01)


class World:
    """The real blueprint and kinds' rules over the engine's in-memory cloud (as the golden tests)."""

    def __init__(self) -> None:
        self.cloud = FakeCloud()
        self.kinds = {k: FakeKind(k, self.cloud, like=v) for k, v in registry().items()}
        self.state = State(cluster="x", lineage="00000000-0000-4000-8000-000000000000")

    def plan(self, overrides: tuple[str, ...] = (), **kw: Any) -> Plan:
        spec = load_spec(str(ROOT / "specs/prod.yaml"), overrides)
        live = {x.address: x for k in self.kinds.values() for x in k.discover(None)}
        return make_plan(blueprint.build(spec), self.state, live, rules_of(registry()),
                         cluster=spec.cluster_name, region=spec.region, **kw)

    def apply(self, plan: Plan) -> None:
        result = Executor(self.kinds, None, self.state, lambda s: None, parallelism=1).run(plan)
        assert result.ok, [str(f.error) for f in result.failures]
        self.state = result.state


def test_plan_cost_of_a_new_cluster_a_resize_and_a_destroy() -> None:
    def cluster(*overrides: str) -> float:
        spec = load_spec(str(ROOT / "specs/prod.yaml"), overrides)
        return estimate(blueprint.build(spec), "us-west-2").total

    world = World()
    first = world.plan()
    before, after = plan_cost(first, "us-west-2")
    assert before.total == 0 and before.lines == ()
    assert after.total == pytest.approx(cluster())
    world.apply(first)

    before, after = plan_cost(world.plan(), "us-west-2")
    assert before.total == after.total == pytest.approx(cluster())
    assert "(no change)" in footer(before, after)

    resize = ("compute.instance_type=c5.4xlarge",)
    before, after = plan_cost(world.plan(resize), "us-west-2")
    assert before.total == pytest.approx(cluster())
    assert after.total == pytest.approx(cluster(*resize))
    assert after.total - before.total == pytest.approx(3 * (0.68 - 0.34) * 730, abs=0.02)
    assert "$1,025/month now → $1,770/month after this plan (+$745/month)" in footer(before, after)

    destroy = world.plan(options=PlanOptions(destroy=True, allow_data_loss=True))
    assert {c.action for c in destroy.changes} == {DELETE}
    before, after = plan_cost(destroy, "us-west-2")
    assert before.total == pytest.approx(cluster()) and after.total == 0


# -- rendering ------------------------------------------------------------------------------

def test_footer_text() -> None:
    now = estimate([instance("c5.2xlarge", root=None)], "us-west-2")
    later = estimate([instance("c5.2xlarge", root=None), instance("c5.4xlarge", root=None, name="y")],
                     "us-west-2")
    assert footer(now, later, "specs/prod.yaml") == (
        "Estimated cost: $248/month now → $745/month after this plan (+$497/month). Approximate, from "
        "byoc's price table of 2026-11-01 for us-west-2 (on-demand list prices; S3 at a nominal 100 GB). "
        "Run `byoc cost specs/prod.yaml` for the breakdown."
    )
    assert "(-$497/month)" in footer(later, now)
    assert "Run `byoc cost SPEC`" in footer(now, now)
    unknown = estimate([instance("c9.huge", root=None)], "us-west-2")
    assert footer(now, unknown).endswith("Not priced (left out): instance type c9.huge in us-west-2.")


def test_render_estimate_is_a_table_with_the_total_and_the_notes() -> None:
    spec = load_spec(str(ROOT / "specs/prod.yaml"))
    text = render_estimate(estimate(blueprint.build(spec), "us-west-2"))
    lines = text.splitlines()
    assert lines[0].startswith("Estimated monthly cost in us-west-2, USD (byoc's price table of 2026-11-01")
    row = next(line for line in lines if "c5.2xlarge" in line)
    assert row.split() == ["3", "×", "c5.2xlarge", "on-demand", "$744.60", "$0.34/h", "×", "730", "h"]
    total = next(line for line in lines if line.strip().startswith("Total per month"))
    assert total.split()[-1] == "$1,024.97"
    assert "Approximate:" in lines
    assert "  - S3 priced at a nominal 100 GB stored (Standard); requests, versions and Glacier are not " \
        "counted" in lines


# -- right-sizing ---------------------------------------------------------------------------

def usage(average: float, maximum: float | None = None, hours: int = 168, pegged: int = 0) -> Usage:
    return Usage(average, average if maximum is None else maximum, hours, pegged)


@pytest.mark.parametrize(("itype", "use", "expected"), [
    ("c5.2xlarge", usage(20.0), "c5.xlarge"),
    ("c5.xlarge", usage(39.9), "c5.large"),
    ("c5.large", usage(5.0), None),           # the smallest c5
    ("t3.micro", usage(5.0), "t3.nano"),
    ("t3.nano", usage(5.0), None),
    ("c5.2xlarge", usage(40.0), None),        # fits
    ("c5.2xlarge", usage(79.0, 100.0, pegged=10), None),
    ("c5.2xlarge", usage(85.0), "c5.4xlarge"),
    ("c5.4xlarge", usage(85.0), "c5.9xlarge"),  # c5 has no 8xlarge
    ("m5.4xlarge", usage(85.0), "m5.8xlarge"),
    ("c5.24xlarge", usage(95.0), None),       # the largest c5
    ("c6g.large", usage(10.0), "c6g.medium"),
    ("r5.2xlarge", usage(60.0, 100.0, pegged=100), "r5.4xlarge"),  # pegged most hours
    ("x9z.4xlarge", usage(10.0), "x9z.2xlarge"),  # an unknown family: the generic ladder
    ("x9z.8xlarge", usage(90.0), "x9z.9xlarge"),
    ("c5.metal", usage(10.0), None),
    ("nonsense", usage(10.0), None),
])
def test_suggest_ladders(itype: str, use: Usage, expected: str | None) -> None:
    got = suggest(itype, use)
    if expected is None:
        assert got is None
    else:
        assert got is not None and got.startswith(f"consider {expected} (")


def test_suggest_says_why_and_handles_no_data() -> None:
    assert suggest("c5.2xlarge", Usage(None, None, 0)) == "no CPU data yet"
    assert suggest("c5.2xlarge", Usage(12.3, 55.0, 168)) == (
        "consider c5.xlarge (average CPU 12%, peak 55% over 168 h, under 40%)"
    )
    assert suggest("c5.2xlarge", Usage(70.0, 100.0, 10, 6)) == (
        "consider c5.4xlarge (CPU at 100% in 6 of 10 h)"
    )


@given(
    family=st.sampled_from([*FAMILY_SIZES, "zz1"]),
    index=st.integers(min_value=0, max_value=len(SIZES) - 1),
    average=st.floats(min_value=0, max_value=100),
    hours=st.integers(min_value=1, max_value=500),
)
def test_suggest_only_moves_one_step_along_the_family_ladder(
    family: str, index: int, average: float, hours: int
) -> None:
    ladder = FAMILY_SIZES.get(family, SIZES)
    size = ladder[index % len(ladder)]
    got = suggest(f"{family}.{size}", Usage(average, average, hours))
    if got is None:
        return
    target = got.removeprefix("consider ").split(" ")[0]
    fam, _, other = target.partition(".")
    assert fam == family and other in ladder
    step = ladder.index(other) - ladder.index(size)
    assert step == (-1 if average < 40 else 1)
