"""Monthly cost estimates of a cluster and of a plan from byoc's shipped price table (approximate
public list prices), and right-sizing advice from CPU usage. Pure: no AWS calls, no printing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Protocol

from byoc.errors import ByocError
from byoc.model import UNKNOWN, Join, Ref, Sorted
from byoc.plan import CREATE, DELETE, NOOP, Plan

#: the multiplication sign of lines and details ("3 x c5.2xlarge", "$0.34/h x 730 h")
X = "\N{MULTIPLICATION SIGN}"
#: what every estimate leaves out, whatever the resources
ALWAYS_NOTE = ("data transfer is not counted; VPC, subnets, route tables, security groups, IAM, target "
               "groups, listeners and SNS have no charge of their own")


@dataclass(frozen=True)
class Line:
    """One row of an estimate: ``item`` names what and how many, ``detail`` how it was priced."""

    item: str
    monthly: float
    detail: str


@dataclass(frozen=True)
class Estimate:
    """A monthly cost. ``region`` is the region asked for, ``priced_region`` the table's region whose
    prices were used; ``unpriced`` names what has no price (left out of ``total``)."""

    lines: tuple[Line, ...]
    total: float
    region: str
    as_of: str
    approximate_notes: tuple[str, ...]
    priced_region: str = ""
    unpriced: tuple[str, ...] = ()


class Priced(Protocol):
    """Anything with a kind and props: a desired ``Resource``, a ``Live`` one, a plan's side."""

    @property
    def kind(self) -> str: ...

    @property
    def props(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class _Item:
    kind: str
    props: Mapping[str, Any]


@cache
def load_prices() -> dict[str, Any]:
    """byoc's price table (``byoc/data/prices.json``), read once. Do not modify the result."""
    try:
        text = files("byoc").joinpath("data/prices.json").read_text(encoding="utf-8")
        table: dict[str, Any] = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ByocError(f"byoc's price table (byoc/data/prices.json) cannot be read ({exc}): "
                        "reinstall byoc") from exc
    return table


def _known(value: Any) -> Any:
    """``value``, or None when it is not known yet (after apply) or still a reference."""
    if value is UNKNOWN or isinstance(value, Ref | Join | Sorted):
        return None
    return value


def _rate(x: float) -> str:
    return f"${x:.2f}" if round(x, 2) == x else f"${x:.4g}"


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _dollars(x: float) -> str:
    return f"${x:,.0f}"


class _Pricer:
    """Prices resources of one region, grouping equal items and remembering the notes it used."""

    def __init__(self, region: str) -> None:
        self.table = load_prices()
        regions: Mapping[str, Any] = self.table["regions"]
        self.used: set[str] = set()  # keys of the table's notes and nominal values that were used
        self.unpriced: dict[str, None] = {}
        self.region = region
        self.priced_region = region if region in regions else str(self.table["fallback_region"])
        self.p: Mapping[str, Any] = regions[self.priced_region]
        self.hours = float(self.table["hours_per_month"])
        self.groups: dict[tuple[int, str, str], list[float]] = {}

    def price(self, key: str) -> float:
        self.used.add(key)
        return float(self.p[key])

    def nominal(self, key: str) -> float:
        self.used.add(key)
        return float(self.table["nominal"][key]["value"])

    def add(self, rank: int, label: str, detail: str, unit: float | None, unpriced: str = "") -> None:
        if unit is None:
            detail, unit = "price unknown", 0.0
            self.unpriced[unpriced or label] = None
        group = self.groups.setdefault((rank, label, detail), [0.0, unit])
        group[0] += 1

    def ec2_hourly(self, instance_type: str) -> float | None:
        hourly = self.p["ec2_hourly"].get(instance_type)
        return None if hourly is None else float(hourly)

    def result(self) -> Estimate:
        lines = tuple(
            Line(f"{int(count)} {X} {label}", round(count * unit, 2), detail)
            for (_, label, detail), (count, unit) in sorted(self.groups.items())
        )
        notes = []
        if self.priced_region != self.region:
            notes.append(f"{self.region} is not in byoc's price table: {self.priced_region} prices used")
        if self.p.get("note"):
            notes.append(str(self.p["note"]))
        notes += [v["note"] for k, v in self.table["nominal"].items() if k in self.used]
        notes += [v for k, v in self.table["notes"].items() if k in self.used]
        notes.append(ALWAYS_NOTE)
        notes += [f"no price in byoc's table for {u}: left out of the total" for u in self.unpriced]
        return Estimate(lines, round(sum(line.monthly for line in lines), 2), self.region,
                        str(self.table["as_of"]), tuple(notes), self.priced_region, tuple(self.unpriced))


def _instance(pr: _Pricer, props: Mapping[str, Any]) -> None:
    itype = _known(props.get("instance_type"))
    spot = _known(props.get("spot")) is True
    market = "spot" if spot else "on-demand"
    hourly = pr.ec2_hourly(itype) if isinstance(itype, str) else None
    if not isinstance(itype, str):
        pr.add(0, f"instance ({market}, type not known yet)", "", None,
               "an instance whose type is not known yet")
    elif hourly is None:
        pr.add(0, f"{itype} {market}", "", None, f"instance type {itype} in {pr.priced_region}")
    elif spot:
        discount = pr.price("spot_discount")
        rate = hourly * (1 - discount)
        pr.add(0, f"{itype} spot", f"~{_rate(rate)}/h (on-demand {_rate(hourly)}/h less {discount:.0%}) "
               f"{X} {pr.hours:g} h", rate * pr.hours)
    else:
        pr.add(0, f"{itype} on-demand", f"{_rate(hourly)}/h {X} {pr.hours:g} h", hourly * pr.hours)
    if _known(props.get("monitoring")) is True:
        each = pr.price("ec2_detailed_monitoring_month")
        pr.add(1, "EC2 detailed monitoring", f"{_money(each)}/month each", each)
    root = _known(props.get("root_block_device"))
    if isinstance(root, Mapping):
        _volume(pr, 1, "root volume", root.get("volume_size"), root.get("volume_type"), None, None)


def _volume(pr: _Pricer, rank: int, what: str, size: Any, vtype: Any, iops: Any, throughput: Any) -> None:
    size, vtype, iops, throughput = (_known(v) for v in (size, vtype, iops, throughput))
    if vtype not in ("gp3", "gp2"):
        why = f"EBS volume type {vtype}" if vtype else "an EBS volume whose type is not known yet"
        pr.add(rank, f"{what} {vtype or '(type not known yet)'}", "", None, why)
        return
    if not isinstance(size, int | float):
        pr.add(rank, f"{what} {vtype} (size not known yet)", "", None,
               "an EBS volume whose size is not known yet")
        return
    per_gb = pr.price(f"ebs_{vtype}_gb_month")
    unit = size * per_gb
    parts = [f"{size:g} GB {X} {_rate(per_gb)}/GB-month"]
    if vtype == "gp3":
        extra_iops = max(0, (iops if isinstance(iops, int | float) else 3000) - 3000)
        extra_mbps = max(0, (throughput if isinstance(throughput, int | float) else 125) - 125)
        if extra_iops:
            unit += extra_iops * pr.price("ebs_gp3_iops_month")
            parts.append(f"{extra_iops:,g} IOPS {X} {_rate(pr.price('ebs_gp3_iops_month'))}")
        if extra_mbps:
            unit += extra_mbps * pr.price("ebs_gp3_throughput_mbps_month")
            parts.append(f"{extra_mbps:g} MB/s {X} {_rate(pr.price('ebs_gp3_throughput_mbps_month'))}")
    pr.add(rank, f"{what} {vtype} {size:g} GB", " + ".join(parts), unit)


def _hourly(rank: int, label: str, key: str) -> Callable[[_Pricer, Mapping[str, Any]], None]:
    def price(pr: _Pricer, props: Mapping[str, Any]) -> None:
        rate = pr.price(key)
        pr.add(rank, label, f"{_rate(rate)}/h {X} {pr.hours:g} h", rate * pr.hours)
    return price


def _monthly(rank: int, label: str, key: str) -> Callable[[_Pricer, Mapping[str, Any]], None]:
    def price(pr: _Pricer, props: Mapping[str, Any]) -> None:
        each = pr.price(key)
        pr.add(rank, label, f"{_money(each)}/month each", each)
    return price


def _lb(pr: _Pricer, props: Mapping[str, Any]) -> None:
    lb_type = _known(props.get("load_balancer_type"))
    if lb_type not in ("application", "network"):
        pr.add(5, "load balancer (type not known yet)", "", None,
               "a load balancer whose type is not known yet")
        return
    short = "alb" if lb_type == "application" else "nlb"
    unit_name = "LCU" if lb_type == "application" else "NLCU"
    hourly = pr.price(f"{short}_hourly")
    lcu_rate = pr.price(f"{'lcu' if short == 'alb' else 'nlcu'}_hourly_nominal")
    lcus = pr.nominal("lcu")
    detail = f"({_rate(hourly)}/h + {lcus:g} {unit_name} {X} {_rate(lcu_rate)}/h nominal) {X} {pr.hours:g} h"
    pr.add(5, f"{lb_type} load balancer", detail, (hourly + lcus * lcu_rate) * pr.hours)


def _bucket(pr: _Pricer, props: Mapping[str, Any]) -> None:
    gb, per_gb = pr.nominal("s3_gb"), pr.price("s3_gb_month")
    pr.add(6, f"S3 bucket (nominal {gb:g} GB)", f"{gb:g} GB {X} {_rate(per_gb)}/GB-month", gb * per_gb)


def _log_group(pr: _Pricer, props: Mapping[str, Any]) -> None:
    if str(_known(props.get("name")) or "").startswith("/aws/lambda/"):
        return  # the rotation function's few lines a month: counted with the function (_rotation)
    gb, per_gb = pr.nominal("log_ingest_gb"), pr.price("log_ingest_gb")
    pr.add(7, f"log group (nominal {gb:g} GB/month ingested)", f"{gb:g} GB {X} {_rate(per_gb)}/GB",
           gb * per_gb)


def _rotation(pr: _Pricer, props: Mapping[str, Any]) -> None:
    """The password rotation function: a few invocations a month (its log group gets a few lines,
    its queue stays empty)."""
    pr.used.add("password_rotation")
    pr.add(12, "password rotation function (Lambda)", "a few invocations a month", 0.0)


_KINDS: dict[str, Callable[[_Pricer, Mapping[str, Any]], None]] = {
    "aws_instance": _instance,
    "aws_ebs_volume": lambda pr, p: _volume(pr, 2, "data volume", p.get("size"), p.get("type"),
                                            p.get("iops"), p.get("throughput")),
    "aws_nat_gateway": _hourly(3, "NAT gateway", "nat_gateway_hourly"),
    "aws_eip": _hourly(4, "public IPv4 address (Elastic IP)", "public_ipv4_hourly"),
    "aws_lb": _lb,
    "aws_s3_bucket": _bucket,
    "aws_cloudwatch_log_group": _log_group,
    "aws_cloudwatch_metric_alarm": _monthly(8, "CloudWatch alarm", "cloudwatch_alarm_month"),
    "aws_cloudwatch_dashboard": _monthly(9, "CloudWatch dashboard", "cloudwatch_dashboard_month"),
    "aws_kms_key": _monthly(10, "KMS key", "kms_key_month"),
    "aws_secretsmanager_secret": _monthly(11, "Secrets Manager secret", "secret_month"),
    "aws_lambda_function": _rotation,
}


def estimate(resources: Iterable[Priced], region: str) -> Estimate:
    """The monthly cost of ``resources`` in ``region``. Unknown types or regions never raise: the
    line says "price unknown" (0) and a note says which; a region not in the table is priced as
    the table's fallback (us-east-1). Values known only after apply count as absent."""
    pr = _Pricer(region)
    for r in resources:
        price = _KINDS.get(r.kind)
        if price is not None:
            price(pr, r.props or {})
    return pr.result()


def plan_cost(plan: Plan, region: str) -> tuple[Estimate, Estimate]:
    """(now, after this plan): deleted resources count only now, created ones only after, the others
    in both (now from their ``before``, after from their ``after``; a no-op stays as it is)."""
    now: list[_Item] = []
    after: list[_Item] = []
    for c in plan.changes:
        if c.action != CREATE and c.before is not None:
            now.append(_Item(c.kind, c.before))
        if c.action == DELETE:
            continue
        side = c.before if c.action == NOOP and c.before is not None else c.after
        if side is not None:
            after.append(_Item(c.kind, side))
    return estimate(now, region), estimate(after, region)


def _basis(*estimates: Estimate) -> str:
    table = load_prices()
    basis = "on-demand list prices"
    if any(line.item.endswith(" spot") for e in estimates for line in e.lines):
        region = estimates[-1].priced_region or table["fallback_region"]
        basis += f"; spot at about {1 - table['regions'][region]['spot_discount']:.0%} of on-demand"
    return f"{basis}; S3 at a nominal {table['nominal']['s3_gb']['value']:g} GB"


def footer(before: Estimate, after: Estimate, spec: str = "SPEC") -> str:
    """The plan's cost footer: now → after this plan, the difference, and how approximate it is."""
    delta = round(after.total) - round(before.total)
    change = "no change" if delta == 0 else f"{'+' if delta > 0 else '-'}{_dollars(abs(delta))}/month"
    where = after.region
    if after.priced_region and after.priced_region != after.region:
        where += f", priced as {after.priced_region}"
    text = (f"Estimated cost: {_dollars(before.total)}/month now → {_dollars(after.total)}/month after this "
            f"plan ({change}). Approximate, from byoc's price table of {after.as_of} for {where} "
            f"({_basis(before, after)}). Run `byoc cost {spec}` for the breakdown.")
    unpriced = list(dict.fromkeys([*before.unpriced, *after.unpriced]))
    if unpriced:
        text += f" Not priced (left out): {', '.join(unpriced)}."
    return text


def render_estimate(e: Estimate) -> str:
    """A table of the lines and the total, then what makes it approximate."""
    where = e.region + (f" (priced as {e.priced_region})" if e.priced_region and e.priced_region != e.region
                        else "")
    rows = [(line.item, _money(line.monthly), line.detail) for line in e.lines]
    rows.append(("Total per month", _money(e.total), ""))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out = [f"Estimated monthly cost in {where}, USD (byoc's price table of {e.as_of}; "
           f"{_basis(e)}):", ""]
    for i, (item, money, detail) in enumerate(rows):
        if i == len(rows) - 1:
            out.append(f"  {'-' * w0}  {'-' * w1}")
        out.append(f"  {item:<{w0}}  {money:>{w1}}  {detail}".rstrip())
    out += ["", "Approximate:", *(f"  - {n}" for n in e.approximate_notes)]
    return "\n".join(out)


# -- right-sizing ---------------------------------------------------------------------------

#: below this average CPU (%) a smaller size is suggested (byoc's reference: "< 40%")
LOW_CPU = 40.0
#: above this average CPU (%) a larger size is suggested
HIGH_CPU = 80.0
#: an hour whose maximum CPU is at least this (%) counts as pegged
PEGGED_CPU = 99.0

SIZES = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge",
         "9xlarge", "12xlarge", "16xlarge", "18xlarge", "24xlarge", "32xlarge", "48xlarge")
_BURST = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
_GRAVITON = ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_INTEL5 = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge")
_INTEL6 = (*_INTEL5, "32xlarge")
#: the sizes that exist, for the families byoc users pick most; others use the generic ladder
FAMILY_SIZES: dict[str, tuple[str, ...]] = {
    "t3": _BURST, "t3a": _BURST, "t4g": _BURST,
    "c5": ("large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge"),
    "m5": _INTEL5, "r5": _INTEL5, "c6i": _INTEL6, "m6i": _INTEL6, "r6i": _INTEL6,
    "c6g": _GRAVITON, "m6g": _GRAVITON, "r6g": _GRAVITON, "c7g": _GRAVITON, "m7g": _GRAVITON,
    "r7g": _GRAVITON,
}


@dataclass(frozen=True)
class Usage:
    """An instance's CPU over a window of hourly datapoints (None when there are none)."""

    average: float | None
    maximum: float | None
    datapoints: int
    #: hours whose maximum was at least PEGGED_CPU
    hours_at_max: int = 0


def suggest(instance_type: str, usage: Usage) -> str | None:
    """Right-sizing advice: the next smaller size of the family when average CPU is under 40%, the
    next larger when it is over 80% or CPU was pegged most hours; None when it fits or no size
    exists in that direction."""
    if usage.datapoints == 0 or usage.average is None:
        return "no CPU data yet"
    family, _, size = instance_type.partition(".")
    ladder = FAMILY_SIZES.get(family, SIZES)
    if size not in ladder:
        return None
    i = ladder.index(size)
    seen = f"average CPU {usage.average:.0f}%"
    if usage.maximum is not None:
        seen += f", peak {usage.maximum:.0f}%"
    seen += f" over {usage.datapoints} h"
    pegged = usage.hours_at_max * 2 > usage.datapoints
    if usage.average > HIGH_CPU or pegged:
        if i + 1 == len(ladder):
            return None
        why = f"CPU at 100% in {usage.hours_at_max} of {usage.datapoints} h" if pegged else seen
        return f"consider {family}.{ladder[i + 1]} ({why})"
    if usage.average < LOW_CPU and i > 0:
        return f"consider {family}.{ladder[i - 1]} ({seen}, under {LOW_CPU:.0f}%)"
    return None
