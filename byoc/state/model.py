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
        where = f"resources[{d.get('address')!r}]" if isinstance(d.get("address"), str) else "resources"
        props = from_jsonable(dict(_mapping(d.get("props") or {}, f"{where}.props")))
        attrs = from_jsonable(dict(_mapping(d.get("attrs") or {}, f"{where}.attrs")))
        depends_on = _list(d.get("depends_on"), f"{where}.depends_on")
        return cls(
            address=_text(d["address"], f"{where}.address"),
            kind=_text(d["kind"], f"{where}.kind"),
            id=_text(d["id"], f"{where}.id"),
            props=props,
            attrs=attrs,
            depends_on=tuple(_text(x, f"{where}.depends_on") for x in depends_on),
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

    def with_changes(self, changes: Mapping[str, ResourceState | None]) -> State:
        """Several resources recorded (or, where None, forgotten) at once: one new document."""
        if not changes:
            return self
        resources = dict(self.resources)
        for address, rs in changes.items():
            if rs is None:
                resources.pop(address, None)
            else:
                resources[address] = rs
        return replace(self, resources=resources)

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
            ("outputs", self.outputs),
            ("facts", self.facts),
            ("final_snapshots", self.final_snapshots),
        ]

    def to_dict(self) -> dict[str, Any]:
        doc = {key: _plain(key, value) for key, value in self._fields()}
        doc["resources"] = [self.resources[a].to_dict() for a in sorted(self.resources)]
        return doc

    def to_json(self) -> str:
        """The state file's text: ``json.dumps(self.to_dict(), indent=2) + "\\n"``, byte for byte."""
        return self.to_bytes().decode("utf-8")

    def to_bytes(self, cache: MutableMapping[int, tuple[object, bytes]] | None = None) -> bytes:
        """``to_json()`` encoded (UTF-8; JSON escapes all else, so it is ASCII), as the stores write it.

        The executor writes the state after every batch of finished operations; with a ``cache``
        kept between writes, a part written before (the same ResourceState object, the same
        outputs, facts or final snapshots) is not serialised again, so a write costs what changed
        rather than the whole cluster. (Its parts are never changed in place: ``with_*`` makes new
        ones.) The parts are kept encoded and joined once: the document is large (~370 kB at 30
        nodes), and every copy of it costs.
        """
        old: Mapping[int, tuple[object, bytes]] = cache if cache is not None else {}
        fresh: dict[int, tuple[object, bytes]] = {}
        parts = [b"{\n"]
        for key, value in self._fields():
            lead = b"  " if key == "version" else b",\n  "
            parts.append(lead + json.dumps(key).encode() + b": ")
            if key == "resources":
                resources = self.resources
                parts.append(b"[\n" if resources else b"[]")
                for i, address in enumerate(sorted(resources)):  # tight: it runs per resource per write
                    rs = resources[address]
                    hit = old.get(id(rs))
                    if hit is None or hit[0] is not rs:
                        hit = (rs, ("    " + _nested(rs.to_dict(), 2)).encode("utf-8"))
                    fresh[id(rs)] = hit
                    if i:
                        parts.append(b",\n")
                    parts.append(hit[1])
                if resources:
                    parts.append(b"\n  ]")
            elif isinstance(value, (Mapping, tuple)):
                hit = old.get(id(value))
                if hit is None or hit[0] is not value:
                    hit = (value, _nested(_plain(key, value), 1).encode("utf-8"))
                fresh[id(value)] = hit
                parts.append(hit[1])
            else:
                parts.append(_nested(value, 1).encode("utf-8"))
        parts.append(b"\n}\n")
        if cache is not None:
            cache.clear()
            cache.update(fresh)
        return b"".join(parts)

    @classmethod
    def from_dict(cls, d: Any, source: str = "state") -> State:
        """Read a state document; refuse newer formats and anything malformed (a StateError
        naming the field, never another exception). The caller adds where a good copy is."""
        if not isinstance(d, Mapping):
            raise StateError(f"{source}: not a byoc state file (expected a JSON object)")
        version = d.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise StateError(f"{source}: not a byoc state file (no integer 'version')")
        if version > STATE_VERSION:
            raise StateError(
                f"{source}: state format version {version} is newer than this byoc understands "
                f"({STATE_VERSION}); upgrade byoc. The file was left untouched."
            )
        try:
            serial = d["serial"]
            if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
                raise _Bad(f"'serial' must be a whole number >= 0, not {serial!r}")
            resources = [ResourceState.from_dict(_mapping(r, f"resources[{i}]"))
                         for i, r in enumerate(_list(d.get("resources"), "resources"))]
            return cls(
                cluster=_text(d["cluster"], "cluster"),
                lineage=_text(d["lineage"], "lineage"),
                serial=serial,
                resources={r.address: r for r in resources},
                outputs=from_jsonable(dict(_mapping(d.get("outputs") or {}, "outputs"))),
                facts=dict(_mapping(d.get("facts") or {}, "facts")),
                final_snapshots=tuple(
                    _final_snapshot(r, f"final_snapshots[{i}]")
                    for i, r in enumerate(_list(d.get("final_snapshots"), "final_snapshots"))
                ),
            )
        except (_Bad, KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise StateError(
                f"{source}: state file is corrupt ({what}). The file was left untouched; fix the "
                "field by hand, or put a good copy in its place."
            ) from exc


class _Bad(ValueError):
    """A field of the state document has the wrong type."""


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"'{where}' must be a string, not {type(value).__name__}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _Bad(f"'{where}' must be an object, not {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"'{where}' must be a list, not {type(value).__name__}")
    return value


def _final_snapshot(value: Any, where: str) -> dict[str, str]:
    record = _mapping(value, where)
    for key in ("address", "snapshot_id"):
        if key not in record:
            raise _Bad(f"'{where}' has no {key!r}")
    for key, v in record.items():
        if not isinstance(v, str):
            raise _Bad(f"'{where}.{key}' must be a string, not {type(v).__name__}")
    return dict(record)


def _plain(key: str, value: Any) -> Any:
    """A top-level field's value as the document holds it (plain dicts and lists)."""
    if key == "outputs":
        return to_jsonable(dict(value))
    if key == "facts":
        return dict(value)
    if key == "final_snapshots":
        return [dict(r) for r in value]
    return value


def _nested(value: Any, level: int) -> str:
    """``value`` as ``json.dumps(indent=2)`` prints it ``level`` levels deep (strings escape their
    newlines, so every newline in the text is layout)."""
    return json.dumps(value, indent=2).replace("\n", "\n" + "  " * level)
