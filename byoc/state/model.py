"""The state document: what byoc created, with AWS ids and last-applied properties.

Format (version 1)::

    {"version": 1, "lineage": "<uuid>", "serial": 7, "cluster": "prod",
     "resources": [{"address", "kind", "id", "props", "attrs", "depends_on"}...],
     "outputs": {...}, "facts": {"ami": "ami-…", …},
     "final_snapshots": [{"address", "volume_id", "snapshot_id", "time"}...]}

``facts`` pins values resolved outside the spec (the AMI id), so a new AMI release never
replaces running nodes unless the user asks.

``serial`` grows with every write; ``lineage`` is fixed when the state is first created, so a
plan made against one state can never be applied to another.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

from byoc.errors import StateError
from byoc.model import Live, from_jsonable, to_jsonable

STATE_VERSION = 1


@dataclass(frozen=True)
class ResourceState:
    """One managed resource as last applied."""

    address: str
    kind: str
    id: str
    props: Mapping[str, Any]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    def to_live(self) -> Live:
        return Live(self.address, self.kind, self.id, self.props, self.attrs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "id": self.id,
            "props": to_jsonable(self.props),
            "attrs": to_jsonable(self.attrs),
            "depends_on": list(self.depends_on),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResourceState:
        return cls(
            address=str(d["address"]),
            kind=str(d["kind"]),
            id=str(d["id"]),
            props=from_jsonable(d.get("props") or {}),
            attrs=from_jsonable(d.get("attrs") or {}),
            depends_on=tuple(d.get("depends_on") or ()),
        )


@dataclass(frozen=True)
class State:
    """An immutable snapshot of a cluster's state; ``with_*`` methods return new snapshots."""

    cluster: str
    lineage: str
    serial: int = 0
    resources: Mapping[str, ResourceState] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    version: int = STATE_VERSION
    facts: Mapping[str, Any] = field(default_factory=dict)
    #: final snapshots taken of data volumes byoc deleted (scale-down, restore), oldest first:
    #: ``{"address", "volume_id", "snapshot_id", "time"}``
    final_snapshots: tuple[Mapping[str, str], ...] = ()

    @classmethod
    def new(cls, cluster: str) -> State:
        return cls(cluster=cluster, lineage=str(uuid.uuid4()))

    def with_resource(self, rs: ResourceState) -> State:
        return replace(self, resources={**self.resources, rs.address: rs})

    def without(self, address: str) -> State:
        return replace(self, resources={a: r for a, r in self.resources.items() if a != address})

    def with_outputs(self, outputs: Mapping[str, Any]) -> State:
        return replace(self, outputs=dict(outputs))

    def with_facts(self, facts: Mapping[str, Any]) -> State:
        return replace(self, facts=dict(facts))

    def with_final_snapshot(self, address: str, volume_id: str, snapshot_id: str, when: str) -> State:
        record = {"address": address, "volume_id": volume_id, "snapshot_id": snapshot_id, "time": when}
        return replace(self, final_snapshots=(*self.final_snapshots, record))

    def bumped(self) -> State:
        return replace(self, serial=self.serial + 1)

    def _fields(self) -> list[tuple[str, Any]]:
        """The document's top-level fields in order, ``resources`` left as None."""
        return [
            ("version", self.version),
            ("lineage", self.lineage),
            ("serial", self.serial),
            ("cluster", self.cluster),
            ("resources", None),
            ("outputs", to_jsonable(dict(self.outputs))),
            ("facts", dict(self.facts)),
            ("final_snapshots", [dict(r) for r in self.final_snapshots]),
        ]

    def to_dict(self) -> dict[str, Any]:
        doc = dict(self._fields())
        doc["resources"] = [self.resources[a].to_dict() for a in sorted(self.resources)]
        return doc

    def to_json(self, cache: MutableMapping[int, tuple[ResourceState, str]] | None = None) -> str:
        """The state file's text: ``json.dumps(self.to_dict(), indent=2) + "\\n"``, byte for byte.

        The executor writes the state after every operation; with a ``cache`` kept between
        writes, a resource written before (the same ResourceState object) is not serialised
        again, so a write costs what changed rather than the whole cluster.
        """
        fresh: dict[int, tuple[ResourceState, str]] = {}
        items = []
        for address in sorted(self.resources):
            rs = self.resources[address]
            hit = cache.get(id(rs)) if cache is not None else None
            text = hit[1] if hit is not None and hit[0] is rs else _nested(rs.to_dict(), 2)
            fresh[id(rs)] = (rs, text)
            items.append("    " + text)
        if cache is not None:
            cache.clear()
            cache.update(fresh)
        lines = []
        for key, value in self._fields():
            if key == "resources":
                text = "[\n" + ",\n".join(items) + "\n  ]" if items else "[]"
            else:
                text = _nested(value, 1)
            lines.append(f"  {json.dumps(key)}: {text}")
        return "{\n" + ",\n".join(lines) + "\n}\n"

    @classmethod
    def from_dict(cls, d: Any, source: str = "state") -> State:
        """Read a state document; refuse newer formats and anything malformed."""
        if not isinstance(d, Mapping):
            raise StateError(f"{source}: not a byoc state file (expected a JSON object)")
        version = d.get("version")
        if not isinstance(version, int):
            raise StateError(f"{source}: not a byoc state file (no integer 'version')")
        if version > STATE_VERSION:
            raise StateError(
                f"{source}: state format version {version} is newer than this byoc understands "
                f"({STATE_VERSION}); upgrade byoc. The file was left untouched."
            )
        try:
            resources = [ResourceState.from_dict(r) for r in d.get("resources", [])]
            return cls(
                cluster=str(d["cluster"]),
                lineage=str(d["lineage"]),
                serial=int(d["serial"]),
                resources={r.address: r for r in resources},
                outputs=from_jsonable(d.get("outputs") or {}),
                facts=dict(d.get("facts") or {}),
                final_snapshots=tuple(
                    {str(k): str(v) for k, v in r.items()} for r in d.get("final_snapshots") or ()
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"{source}: state file is corrupt ({type(exc).__name__}: {exc}); "
                "the previous copy is kept beside it as .backup. The file was left untouched."
            ) from exc


def _nested(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(indent=2)`` prints it ``level`` levels deep (strings escape their
    newlines, so every newline in the text is layout)."""
    return json.dumps(value, indent=2).replace("\n", "\n" + "  " * level)
