"""The engine: one cluster's spec, state store, AWS context and kinds, wired into plan and apply.

This is the layer the CLI and the Python API share. It does I/O (state files, AWS) but no
terminal output: progress leaves as events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from byoc import blueprint
from byoc.discover import discover
from byoc.errors import PlanError, StateError
from byoc.executor import ApplyResult, Event, Executor
from byoc.model import Live
from byoc.plan import Plan
from byoc.planner import PlanOptions, make_plan, rules_of
from byoc.resources.base import AwsContext, ResourceType
from byoc.spec import Spec
from byoc.state.local import LocalBackend
from byoc.state.model import State


def backend_for(spec: Spec, state_dir: str | Path | None = None) -> LocalBackend:
    """The state store the spec asks for."""
    conf = spec.data.get("state") or {}
    if conf.get("backend", "local") != "local":
        raise StateError(
            f"{spec.source}: state.backend {conf.get('backend')!r} is not supported by this version "
            "of byoc yet; use the local backend (state.backend: local)"
        )
    return LocalBackend(state_dir or conf.get("path") or "state", spec.cluster_name)


class Engine:
    """Plan and apply one cluster. ``kinds`` and ``ctx`` are injectable for tests."""

    def __init__(
        self,
        spec: Spec,
        *,
        kinds: Mapping[str, ResourceType] | None = None,
        ctx: Any = None,
        backend: LocalBackend | None = None,
        parallelism: int = 10,
    ) -> None:
        self.spec = spec
        if kinds is None:
            from byoc.resources import registry

            kinds = registry()
        self.kinds = kinds
        self.parallelism = parallelism
        self.ctx = ctx if ctx is not None else AwsContext(
            cluster=spec.cluster_name, region=spec.region, parallelism=parallelism
        )
        self.backend = backend or backend_for(spec)

    # -- reading -------------------------------------------------------------------------------
    def state(self) -> State | None:
        return self.backend.read()

    def refresh(self) -> dict[str, Live]:
        return discover(self.kinds, self.ctx, self.parallelism)

    def plan(self, options: PlanOptions | None = None) -> Plan:
        """Read state, discover what exists, and compare with the spec."""
        state = self.state()
        live = self.refresh()
        return make_plan(
            blueprint.build(self.spec),
            state,
            live,
            rules_of(self.kinds),
            cluster=self.spec.cluster_name,
            spec_digest=self.spec.digest,
            spec_source=self.spec.source,
            spec_overrides=self.spec.overrides,
            region=self.spec.region,
            options=options,
        )

    # -- writing -------------------------------------------------------------------------------
    def check_fresh(self, plan: Plan) -> None:
        """Refuse a saved plan that no longer matches the state or the spec."""
        if plan.cluster != self.spec.cluster_name:
            raise PlanError(f"the plan is for cluster {plan.cluster!r}, not {self.spec.cluster_name!r}")
        if plan.spec_digest != self.spec.digest:
            raise PlanError(
                f"the spec {self.spec.source} has changed since this plan was made; "
                "run `byoc plan` again"
            )
        state = self.state()
        lineage = state.lineage if state else None
        serial = state.serial if state else 0
        if (plan.lineage is not None and plan.lineage != lineage) or plan.serial != serial:
            raise PlanError(
                f"the plan is stale: it was made against state serial {plan.serial}"
                f"{'' if plan.lineage is None else ' of lineage ' + plan.lineage}, but the state is "
                f"now at serial {serial}; run `byoc plan` again"
            )

    def apply(
        self,
        plan: Plan,
        *,
        on_event: Callable[[Event], None] = lambda e: None,
        recheck: bool = False,
    ) -> ApplyResult:
        """Carry out a plan; the caller holds the lock. State is saved after every operation."""
        state = self.state() or State.new(self.spec.cluster_name)
        executor = Executor(
            self.kinds, self.ctx, state, self.backend.write,
            parallelism=self.parallelism, on_event=on_event, recheck=recheck,
        )
        result = executor.run(plan)
        outputs = outputs_of(self.spec, {a: r.to_live() for a, r in result.state.resources.items()})
        if outputs != dict(result.state.outputs):
            executor.save(result.state.with_outputs(outputs))
            result.state = executor.state
        return result


def outputs_of(spec: Spec, resources: Mapping[str, Live]) -> dict[str, Any]:
    """The values users want after apply, from what exists."""
    def ids(kind_name: str) -> list[str]:
        prefix = kind_name + "["
        return [resources[a].id for a in sorted(resources) if a.startswith(prefix)]

    out: dict[str, Any] = {}
    vpc = resources.get("aws_vpc.main")
    if vpc:
        out["vpc_id"] = vpc.id
    if ids("aws_subnet.public"):
        out["public_subnet_ids"] = ids("aws_subnet.public")
    if ids("aws_subnet.private"):
        out["private_subnet_ids"] = ids("aws_subnet.private")
    for name in ("lb", "node"):
        sg = resources.get(f"aws_security_group.{name}")
        if sg:
            out[f"{name}_security_group_id"] = sg.id
    return out


def read_plan_file(path: str | Path) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: cannot read the plan file: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}: not a byoc plan file (invalid JSON: {exc})") from exc
    return Plan.from_dict(data, source=str(path))
