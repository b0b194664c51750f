"""The plan: immutable data that round-trips through JSON in the layout of ``terraform show -json``.

Each ``Change`` carries what the executor needs (desired props with references, the prior AWS id
and attributes, old and new dependencies). ``Plan.to_dict`` writes Terraform's layout
(``format_version``, ``resource_changes`` with ``change.actions/before/after/after_unknown``,
``planned_values``) plus byoc's extras under ``byoc`` keys, so policy tools can read it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from byoc.drift import MISSING, MODIFIED, DriftReport
from byoc.errors import PlanError
from byoc.model import (
    UNKNOWN,
    Live,
    contains_unknown,
    from_jsonable,
    parse_address,
    to_jsonable,
)
from byoc.version import __version__

PLAN_FORMAT = 1
TF_FORMAT_VERSION = "1.2"

CREATE, UPDATE, REPLACE, DELETE, NOOP = "create", "update", "replace", "delete", "no-op"
_TF_ACTIONS = {
    CREATE: ["create"],
    UPDATE: ["update"],
    REPLACE: ["delete", "create"],
    DELETE: ["delete"],
    NOOP: ["no-op"],
}


@dataclass(frozen=True)
class AttrChange:
    """One top-level attribute that differs; ``detail`` lists deepdiff's paths inside it."""

    name: str
    before: Any
    after: Any
    forces_replacement: bool = False
    detail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """What will happen to one resource, and why."""

    address: str
    kind: str
    action: str
    reason: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    desired: Mapping[str, Any] | None = None
    attributes: tuple[AttrChange, ...] = ()
    depends_on: tuple[str, ...] = ()
    old_depends_on: tuple[str, ...] = ()
    prior_id: str | None = None
    prior_attrs: Mapping[str, Any] = field(default_factory=dict)
    protected: bool = False
    #: a data volume deleted (scale-down, restore) is snapshotted first; the snapshot id is
    #: reported and recorded in the state
    final_snapshot: bool = False

    @property
    def prior(self) -> Live | None:
        if self.prior_id is None:
            return None
        return Live(self.address, self.kind, self.prior_id, self.before or {}, self.prior_attrs)

    def to_dict(self) -> dict[str, Any]:
        after_known, after_unknown = _split_unknown(self.after)
        d: dict[str, Any] = _tf_resource(self.address) | {
            "change": {
                "actions": _TF_ACTIONS[self.action],
                "before": tf_values(to_jsonable(self.before)) if self.before is not None else None,
                "after": tf_values(after_known),
                "after_unknown": after_unknown,
                "before_sensitive": False,
                "after_sensitive": False,
            },
            "action_reason": self.reason,
            "byoc": {
                "action": self.action,
                "reason": self.reason,
                "attributes": [
                    {
                        "name": a.name,
                        "before": to_jsonable(a.before),
                        "after": to_jsonable(a.after),
                        "forces_replacement": a.forces_replacement,
                        "detail": list(a.detail),
                    }
                    for a in self.attributes
                ],
                "before": to_jsonable(self.before) if self.before is not None else None,
                "after": to_jsonable(self.after) if self.after is not None else None,
                "desired": to_jsonable(self.desired) if self.desired is not None else None,
                "depends_on": list(self.depends_on),
                "old_depends_on": list(self.old_depends_on),
                "prior_id": self.prior_id,
                "prior_attrs": to_jsonable(self.prior_attrs),
                "protected": self.protected,
                "final_snapshot": self.final_snapshot,
            },
        }
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        x = d["byoc"]
        before = x["before"] if "before" in x else d["change"]["before"]
        return cls(
            address=d["address"],
            kind=d["type"],
            action=x["action"],
            reason=x["reason"],
            before=from_jsonable(before) if before is not None else None,
            after=from_jsonable(x["after"]) if x["after"] is not None else None,
            desired=from_jsonable(x["desired"]) if x["desired"] is not None else None,
            attributes=tuple(
                AttrChange(
                    a["name"], from_jsonable(a["before"]), from_jsonable(a["after"]),
                    bool(a["forces_replacement"]), tuple(a.get("detail", ())),
                )
                for a in x["attributes"]
            ),
            depends_on=tuple(x["depends_on"]),
            old_depends_on=tuple(x["old_depends_on"]),
            prior_id=x["prior_id"],
            prior_attrs=from_jsonable(x["prior_attrs"]),
            protected=bool(x["protected"]),
            final_snapshot=bool(x.get("final_snapshot", False)),
        )


@dataclass(frozen=True)
class Plan:
    """A whole plan: the changes, what it was made against, and what it refused."""

    cluster: str
    lineage: str | None
    serial: int
    spec_digest: str
    spec_source: str
    spec_overrides: tuple[str, ...]
    changes: tuple[Change, ...]
    destroy: bool = False
    #: addresses in state whose resource is gone and is not desired: dropped from state on apply
    forget: tuple[str, ...] = ()
    #: owned resources that no state knows and no spec asks for (left by a crash or made by hand)
    unmanaged: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    region: str = ""
    #: values resolved outside the spec that this plan was made with (pinned in state on apply)
    facts: Mapping[str, Any] = field(default_factory=dict)
    #: desired resources that exist in AWS (tagged by byoc) but not in the state: recorded on apply
    adopt: tuple[str, ...] = ()
    #: -target in effect: the only addresses this plan touches (empty: all)
    targets: tuple[str, ...] = ()
    #: what changed outside byoc since the last apply (the state compared with AWS)
    drift: DriftReport | None = None
    #: node keys taken out of service one at a time, in this order (byoc/rolling.py)
    rolling: tuple[str, ...] = ()
    #: where the state this plan was made against lives (e.g. "state/dev.json (local: /abs/…)")
    state_location: str = ""

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action != NOOP)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable) or bool(self.forget) or bool(self.adopt)

    def counts(self) -> dict[str, int]:
        c = Counter(ch.action for ch in self.changes)
        return {
            "add": c[CREATE] + c[REPLACE],
            "change": c[UPDATE],
            "destroy": c[DELETE] + c[REPLACE],
        }

    def change(self, address: str) -> Change:
        for c in self.changes:
            if c.address == address:
                return c
        raise KeyError(address)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": TF_FORMAT_VERSION,
            "terraform_version": "1.9.0",
            "byoc_version": __version__,
            "byoc": {
                "plan_format": PLAN_FORMAT,
                "cluster": self.cluster,
                "region": self.region,
                "lineage": self.lineage,
                "serial": self.serial,
                "spec_digest": self.spec_digest,
                "spec_source": self.spec_source,
                "spec_overrides": list(self.spec_overrides),
                "destroy": self.destroy,
                "forget": list(self.forget),
                "unmanaged": list(self.unmanaged),
                "refused": list(self.refused),
                "notes": list(self.notes),
                "facts": dict(self.facts),
                "summary": self.counts(),
                "adopt": list(self.adopt),
                "targets": list(self.targets),
                "drift": self.drift.to_dict() if self.drift is not None else None,
                # node keys replaced or stopped one at a time, in this order (absent: no roll)
                **({"rolling": list(self.rolling)} if self.rolling else {}),
                **({"state_location": self.state_location} if self.state_location else {}),
            },
            "planned_values": {"root_module": {"resources": self._planned_values()}},
            "resource_drift": self._resource_drift(),
            "resource_changes": [c.to_dict() for c in self.changes],
            "configuration": self._configuration(),
            "applyable": self.has_changes,
            "complete": not self.targets,
            "errored": False,
        }

    def _resource_drift(self) -> list[dict[str, Any]]:
        """Terraform's ``resource_drift``: modified resources as updates, missing ones as deletes
        (before/after hold the drifted attributes only)."""
        out = []
        for r in self.drift.resources if self.drift is not None else ():
            if r.status not in (MODIFIED, MISSING):
                continue
            entry = _tf_resource(r.address)
            before = {"id": r.aws_id} | {a.name: to_jsonable(a.expected) for a in r.attributes}
            after = {"id": r.aws_id} | {a.name: to_jsonable(a.actual) for a in r.attributes}
            entry["change"] = {
                "actions": ["update"] if r.status == MODIFIED else ["delete"],
                "before": tf_values(before), "after": tf_values(after) if r.status == MODIFIED else None,
                "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {},
            }
            out.append(entry)
        return out

    def _configuration(self) -> dict[str, Any]:
        """Terraform's ``configuration``: the provider and each resource's arguments as constant
        expressions (references as Terraform reference lists), which checkov's terraform_plan
        framework reads beside ``planned_values``."""
        blocks: dict[str, dict[str, Any]] = {}
        for c in self.changes:
            if c.desired is None:
                continue
            kind, name, key = parse_address(c.address)
            block = f"{kind}.{name}"
            if block in blocks:  # one configuration block per kind.name, as Terraform's for_each
                blocks[block]["for_each_expression"]["constant_value"].append(key)
                continue
            entry: dict[str, Any] = {
                "address": block, "mode": "managed", "type": kind, "name": name,
                "provider_config_key": "aws",
                "expressions": {k: _expression(v) for k, v in c.desired.items()},
                "schema_version": 0,
            }
            if key is not None:
                entry["for_each_expression"] = {"constant_value": [key]}
            blocks[block] = entry
        resources = list(blocks.values())
        return {
            "provider_config": {"aws": {
                "name": "aws", "full_name": PROVIDER,
                "expressions": {"region": {"constant_value": self.region}},
            }},
            "root_module": {"resources": resources},
        }

    def _planned_values(self) -> list[dict[str, Any]]:
        out = []
        for c in self.changes:
            if c.action == DELETE or c.after is None:
                continue
            values = tf_values(_split_unknown(c.after)[0])
            out.append(_tf_resource(c.address) | {"schema_version": 0, "values": values,
                                                  "sensitive_values": {}})
        return out

    @classmethod
    def from_dict(cls, d: Any, source: str = "plan") -> Plan:
        try:
            x = d["byoc"]
            if x["plan_format"] > PLAN_FORMAT:
                raise PlanError(f"{source}: plan format {x['plan_format']} is newer than this byoc")
            return cls(
                cluster=x["cluster"],
                region=x.get("region", ""),
                lineage=x["lineage"],
                serial=int(x["serial"]),
                spec_digest=x["spec_digest"],
                spec_source=x["spec_source"],
                spec_overrides=tuple(x.get("spec_overrides", ())),
                changes=tuple(Change.from_dict(c) for c in d["resource_changes"]),
                destroy=bool(x["destroy"]),
                forget=tuple(x.get("forget", ())),
                unmanaged=tuple(x.get("unmanaged", ())),
                refused=tuple(x.get("refused", ())),
                notes=tuple(x.get("notes", ())),
                facts=dict(x.get("facts") or {}),
                adopt=tuple(x.get("adopt", ())),
                targets=tuple(x.get("targets", ())),
                drift=DriftReport.from_dict(x["drift"]) if x.get("drift") else None,
                rolling=tuple(str(k) for k in x.get("rolling", ())),
                state_location=str(x.get("state_location") or ""),
            )
        except PlanError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"{source}: not a byoc plan file ({type(exc).__name__}: {exc})") from exc


PROVIDER = "registry.terraform.io/hashicorp/aws"


def _tf_resource(address: str) -> dict[str, Any]:
    """The identifying keys Terraform puts on every resource entry."""
    kind, name, key = parse_address(address)
    d: dict[str, Any] = {"address": address, "mode": "managed", "type": kind, "name": name,
                         "provider_name": PROVIDER}
    if key is not None:
        d["index"] = key
    return d


def tf_values(value: Any) -> Any:
    """Values as Terraform's JSON shows them: IAM policy documents as JSON text (what checkov's
    and OPA's Terraform policies parse), everything else unchanged."""
    if isinstance(value, Mapping):
        if "Statement" in value and "Version" in value:
            return json.dumps(value, sort_keys=True)
        return {k: tf_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tf_values(v) for v in value]
    return value


def _expression(value: Any) -> dict[str, Any]:
    """A desired value as a Terraform configuration expression."""
    from byoc.model import Join, Ref, Sorted, walk_refs

    if isinstance(value, Ref | Join | Sorted) or any(True for _ in walk_refs(value)):
        refs = sorted({f"{r.address}.{r.attr}" for r in walk_refs(value)})
        return {"references": refs + sorted({r.rsplit(".", 1)[0] for r in refs})}
    return {"constant_value": to_jsonable(value)}


def _split_unknown(value: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """Terraform's (after, after_unknown): unknown values left out of one, marked true in the other."""
    if value is None:
        return None, {}

    def known(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: known(x) for k, x in v.items() if x is not UNKNOWN}
        if isinstance(v, list | tuple):
            return [None if x is UNKNOWN else known(x) for x in v]
        return to_jsonable(v)

    def unknown(v: Any) -> Any:
        if v is UNKNOWN:
            return True
        if isinstance(v, Mapping):
            return {k: unknown(x) for k, x in v.items() if contains_unknown(x)}
        if isinstance(v, list | tuple):
            return [unknown(x) if contains_unknown(x) else False for x in v]
        return False

    return known(value), unknown(value)
