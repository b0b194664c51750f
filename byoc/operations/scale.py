"""Scaling a cluster: a plan as if ``--set compute.instance_count=N``, applied like any other, with
a final snapshot of every removed node's data volume; afterwards the spec file says N too.

Scale-up adds nodes round-robin over the AZs (the blueprint's placement); scale-down removes the
highest-numbered nodes: their target group attachments are deregistered and drained before the
instances go, and each data volume is snapshotted before it is deleted.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from byoc.engine import Engine
from byoc.errors import ByocError
from byoc.executor import ApplyResult, Event
from byoc.plan import CREATE, DELETE, REPLACE, Plan
from byoc.planner import PlanOptions
from byoc.rolling import INSTANCE, node_of, node_order
from byoc.spec import Spec, load_spec
from byoc.spec.edit import SpecEditError, set_scalar
from byoc.spec.load import load_spec_dict

FIELD = ("compute", "instance_count")


@dataclass(frozen=True)
class ScalePlan:
    """What ``apply_scale`` carries out: the plan, made by ``engine`` (bound to the scaled spec)."""

    engine: Engine
    plan: Plan
    count: int
    #: nodes before the change (instances that exist)
    current: int
    #: what the spec said before (the file is edited only when this differs from ``count``)
    spec_count: int
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ScaleResult:
    result: ApplyResult
    #: removed node's data volume address -> final snapshot id
    snapshots: dict[str, str]
    #: the spec file's line that now says the new count, or None with ``spec_warning`` saying why not
    spec_line: int | None
    spec_warning: str | None


def counts_overridden(spec: Spec) -> bool:
    """Whether the spec's node count comes from an override (``--set compute.instance_count=…``)."""
    return any(o.split("=", 1)[0].strip() == ".".join(FIELD) for o in spec.overrides)


def scaled_spec(spec: Spec, count: int) -> Spec:
    """The spec with ``compute.instance_count=count`` (replacing an override of it), validated like
    any ``--set`` (schema bounds)."""
    kept = tuple(o for o in spec.overrides if o.split("=", 1)[0].strip() != ".".join(FIELD))
    overrides = (*kept, f"{'.'.join(FIELD)}={count}")
    if Path(spec.source).is_file():
        return load_spec(spec.source, overrides)
    return load_spec_dict(spec.data, overrides, source=spec.source)


def plan_scale(engine: Engine, count: int) -> ScalePlan:
    """Plan the cluster at ``count`` nodes; removed nodes' data volumes get final snapshots."""
    scaled = copy.copy(engine)  # same AWS context, kinds, state store and AMI resolver
    scaled.spec = scaled_spec(engine.spec, count)
    plan = scaled.plan(PlanOptions(final_snapshots=True))
    scaled.refuse_upgrade_without_steps(plan)  # before the plan is shown and confirmed
    nodes = {action: tuple(sorted((node_of(c.address) or "" for c in plan.changes
                                   if c.kind == INSTANCE and c.action == action), key=node_order))
             for action in (CREATE, DELETE)}
    refuse_replaced_data(plan)
    current = sum(1 for c in plan.changes if c.kind == INSTANCE and c.action != CREATE)
    return ScalePlan(scaled, plan, count, current, engine.spec.instance_count, nodes[CREATE], nodes[DELETE])


def refuse_replaced_data(plan: Plan) -> None:
    """Final snapshots are for the removed nodes' volumes: a kept node's data volume that the
    plan would replace (a zone taken out of the spec …) is not scaling's business."""
    replaced = [f"{c.address} ({c.prior_id}): {c.reason}" for c in plan.changes
                if c.action == REPLACE and c.final_snapshot]
    if replaced:
        raise ByocError(
            "byoc scale only adds and removes nodes, but this plan would also replace data "
            f"volume(s) of nodes that stay: {'; '.join(replaced)}. Look at `byoc plan` for why "
            "and resolve that first."
        )


def apply_scale(
    scale: ScalePlan, *, on_event: Callable[[Event], None] = lambda e: None, update_spec: bool = True,
    cancel: threading.Event | None = None,
) -> ScaleResult:
    """Apply a scale plan (the caller holds the lock); when it succeeded, write the new count into
    the spec file in place."""
    result = scale.engine.apply(scale.plan, on_event=on_event, cancel=cancel)
    line, warning = None, None
    if result.ok and update_spec and scale.spec_count != scale.count:
        line, warning = update_spec_file(scale.engine.spec.source, scale.count)
    return ScaleResult(result, dict(result.snapshots), line, warning)


def update_spec_file(source: str, count: int) -> tuple[int | None, str | None]:
    """(line edited, None), or (None, what the user must change by hand)."""
    if not Path(source).is_file():
        return None, (f"the spec {source} is not a file: set compute.instance_count to {count} where it "
                      "comes from, or the next plan scales the cluster back")
    try:
        return set_scalar(source, FIELD, count), None
    except SpecEditError as exc:
        return None, (f"could not update the spec file ({exc}). Set compute.instance_count: {count} "
                      f"in {source} yourself: until then the next plan or apply scales the cluster back")
