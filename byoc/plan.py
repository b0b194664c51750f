"""The plan: immutable data that round-trips through JSON in the layout of ``terraform show -json``.

Each ``Change`` carries what the executor needs (desired props with references, the prior AWS id
and attributes, old and new dependencies). ``Plan.to_dict`` writes Terraform's layout
(``format_version``, ``resource_changes`` with ``change.actions/before/after/after_unknown``,
``planned_values``) plus byoc's extras under ``byoc`` keys, so policy tools can read it; values
take the AWS provider's shapes through the ``Shaper`` the caller passes (``byoc.planjson``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from byoc.drift import MISSING, MODIFIED, DriftReport
from byoc.errors import PlanError
from byoc.model import (
    Companion,
    Live,
    from_jsonable,
    make_address,
    parse_address,
    to_jsonable,
)
from byoc.planjson import (
    PassThrough,
    Shaper,
    companion_expressions,
    expressions,
    sensitivity,
    shape,
    split_unknown,
)
from byoc.upgrade import Upgrade
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

    def to_dict(self, shaper: Shaper | None = None) -> dict[str, Any]:
        sh = shaper or PassThrough()
        before = to_jsonable(shape(sh, self.kind, self.before)) if self.before is not None else None
        after_known, after_unknown = split_unknown(
            shape(sh, self.kind, self.after) if self.after is not None else None)
        d: dict[str, Any] = _tf_resource(self.address) | {
            "change": {
                "actions": _TF_ACTIONS[self.action],
                "before": before,
                "after": after_known,
                "after_unknown": after_unknown,
                "before_sensitive": sensitivity(before),
                "after_sensitive": sensitivity(after_known),
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
    #: nodes replaced for a new Proton version or image (byoc/upgrade.py): backup first, checked after
    upgrade: Upgrade | None = None

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

    def to_dict(self, shaper: Shaper | None = None) -> dict[str, Any]:
        """Terraform's plan JSON; ``shaper`` puts values in the AWS provider's shapes (the CLI
        passes the resource kinds' ``byoc.resources.shaper()``), without one they pass through."""
        sh = shaper or PassThrough()
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
                # nodes replaced for a new Proton version or image (absent: not an upgrade)
                **({"upgrade": self.upgrade.to_dict()} if self.upgrade is not None else {}),
            },
            "planned_values": {"root_module": {"resources": self._planned_values(sh)}},
            "resource_drift": self._resource_drift(sh),
            "resource_changes": self._resource_changes(sh),
            "configuration": self._configuration(sh),
            "applyable": self.has_changes,
            "complete": not self.targets,
            "errored": False,
        }

    def _resource_changes(self, sh: Shaper) -> list[dict[str, Any]]:
        """Each change, followed by its companions (derived from it, ignored by ``from_dict``)."""
        out = []
        for c in self.changes:
            out.append(c.to_dict(sh))
            before = _companions(sh, c.kind, c.address, c.before, c.prior_id)
            after = _companions(sh, c.kind, c.address, c.after,
                                c.prior_id if c.action != REPLACE else None)
            for address in dict.fromkeys([*before, *after]):
                b, a = before.get(address), after.get(address)
                b_vals = to_jsonable(shape(sh, b.kind, b.values)) if b is not None else None
                a_known, a_unknown = split_unknown(shape(sh, a.kind, a.values) if a is not None else None)
                if b is None or a is None or c.action in (CREATE, DELETE, REPLACE):
                    actions = _TF_ACTIONS[c.action] if b is not None and a is not None else (
                        ["create"] if b is None else ["delete"])
                else:
                    actions = ["no-op"] if b_vals == a_known and not a_unknown else ["update"]
                out.append(_tf_resource(address) | {
                    "change": {"actions": actions, "before": b_vals, "after": a_known,
                               "after_unknown": a_unknown, "before_sensitive": sensitivity(b_vals),
                               "after_sensitive": sensitivity(a_known)},
                    "byoc": {"companion_of": c.address},
                })
        return out

    def _resource_drift(self, sh: Shaper) -> list[dict[str, Any]]:
        """Terraform's ``resource_drift``: modified resources as updates, missing ones as deletes
        (before/after hold the drifted attributes only, in the provider's shape; a drifted prop
        the provider keeps in a companion resource shows as that resource's drift)."""
        out = []
        for r in self.drift.resources if self.drift is not None else ():
            if r.status not in (MODIFIED, MISSING):
                continue
            expected = {a.name: a.expected for a in r.attributes}
            actual = {a.name: a.actual for a in r.attributes}
            entries = [(r.address, {"id": r.aws_id} | shape(sh, r.kind, expected),
                        {"id": r.aws_id} | shape(sh, r.kind, actual))]
            found = _companions(sh, r.kind, r.address, actual, r.aws_id)
            for address, c in _companions(sh, r.kind, r.address, expected, r.aws_id).items():
                if address in found:
                    entries.append((address, shape(sh, c.kind, c.values),
                                    shape(sh, c.kind, found[address].values)))
            for address, before, after in entries:
                entry = _tf_resource(address)
                b, a = to_jsonable(before), to_jsonable(after)
                entry["change"] = {
                    "actions": ["update"] if r.status == MODIFIED else ["delete"],
                    "before": b, "after": a if r.status == MODIFIED else None,
                    "after_unknown": {}, "before_sensitive": sensitivity(b),
                    "after_sensitive": sensitivity(a) if r.status == MODIFIED else False,
                }
                out.append(entry)
        return out

    def _configuration(self, sh: Shaper) -> dict[str, Any]:
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
                "expressions": expressions(sh, c.kind, c.desired),
                "schema_version": 0,
            }
            if key is not None:
                entry["for_each_expression"] = {"constant_value": [key]}
            blocks[block] = entry
            for companion in sh.companions(c.kind, c.desired, None):
                address = f"{companion.kind}.{name}"
                blocks[address] = {
                    "address": address, "mode": "managed", "type": companion.kind, "name": name,
                    "provider_config_key": "aws",
                    "expressions": companion_expressions(companion, block),
                    "schema_version": 0, "byoc": {"companion_of": block},
                } | ({"for_each_expression": entry["for_each_expression"]} if key is not None else {})
        resources = list(blocks.values())
        return {
            "provider_config": {"aws": {
                "name": "aws", "full_name": PROVIDER,
                "expressions": {"region": {"constant_value": self.region}},
            }},
            "root_module": {"resources": resources},
        }

    def _planned_values(self, sh: Shaper) -> list[dict[str, Any]]:
        out = []
        for c in self.changes:
            if c.action == DELETE or c.after is None:
                continue
            values = split_unknown(shape(sh, c.kind, c.after))[0]
            out.append(_tf_resource(c.address) | {"schema_version": 0, "values": values,
                                                  "sensitive_values": sensitivity(values)})
            aws_id = c.prior_id if c.action != REPLACE else None
            for address, companion in _companions(sh, c.kind, c.address, c.after, aws_id).items():
                values = split_unknown(shape(sh, companion.kind, companion.values))[0]
                out.append(_tf_resource(address) | {"schema_version": 0, "values": values,
                                                    "sensitive_values": sensitivity(values),
                                                    "byoc": {"companion_of": c.address}})
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
                changes=tuple(Change.from_dict(c) for c in d["resource_changes"]
                              if "companion_of" not in c["byoc"]),
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
                upgrade=Upgrade.from_dict(x["upgrade"]) if x.get("upgrade") else None,
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


def _companions(sh: Shaper, kind: str, owner: str, values: Mapping[str, Any] | None,
                aws_id: str | None) -> dict[str, Companion]:
    """The companion resources of ``owner``'s ``values`` by address: the companion's kind, the
    owner's name and key (``aws_s3_bucket_public_access_block.data``)."""
    if values is None:
        return {}
    _, name, key = parse_address(owner)
    return {make_address(c.kind, name, key): c for c in sh.companions(kind, values, aws_id)}
