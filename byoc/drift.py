"""Drift: what changed in AWS behind byoc's back. A pure comparison of the state (what byoc last
applied) with what discovery found, filtered by the spec's ignore list; no I/O.

A resource is *modified* (attributes differ from the state), *missing* (in the state, gone from
AWS) or *unmanaged* (tagged for the cluster, in no state). ``expected`` is the state's value;
``desired`` is the spec's value where it differs from the state (a spec edit not yet applied).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from byoc.model import Live, canonical_json, contains_unknown, from_jsonable, to_jsonable
from byoc.state.model import State

MODIFIED, MISSING, UNMANAGED = "modified", "missing", "unmanaged"
_ABSENT = object()


@dataclass(frozen=True)
class IgnoreRule:
    """Accepted differences: resources whose address matches ``address`` (``*`` and ``?`` are
    wildcards; brackets are literal), limited to the attributes matching ``attributes`` (a
    pattern ``tags.Owner`` names one key inside a map attribute). No attributes: the whole
    resource, including its being missing or unmanaged."""

    address: str
    attributes: tuple[str, ...] = ()

    def matches(self, address: str) -> bool:
        return _glob(self.address).fullmatch(address) is not None

    @classmethod
    def from_spec(cls, data: Mapping[str, Any]) -> tuple[IgnoreRule, ...]:
        """The rules of a spec's ``drift.ignore`` list."""
        items = (data.get("drift") or {}).get("ignore") or ()
        return tuple(cls(str(i["address"]), tuple(str(a) for a in i.get("attributes") or ())) for i in items)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern))


def _ignored(
    address: str, names: Iterable[str], ignore: Iterable[IgnoreRule]
) -> Iterator[tuple[str, re.Pattern[str] | None]]:
    """(attribute, map-key pattern or None for the whole attribute) for each ignored one."""
    names = list(names)
    for rule in ignore:
        if not rule.matches(address):
            continue
        for pattern in rule.attributes:
            top, _, key = pattern.partition(".")
            for name in [n for n in names if _glob(top).fullmatch(n)]:
                yield name, _glob(key) if key else None


def without_ignored(address: str, props: Mapping[str, Any], ignore: Iterable[IgnoreRule]) -> dict[str, Any]:
    """``props`` without the attributes (or map keys) the rules for ``address`` ignore."""
    out = dict(props)
    for name, key in _ignored(address, props, ignore):
        if name not in out:
            continue
        if key is None:
            del out[name]
        elif isinstance(out[name], Mapping):
            out[name] = {k: v for k, v in out[name].items() if not key.fullmatch(k)}
    return out


def ignored_whole(address: str, ignore: Iterable[IgnoreRule]) -> bool:
    return any(r.matches(address) and not r.attributes for r in ignore)


@dataclass(frozen=True)
class AttrDrift:
    """One attribute that differs: the state's value, AWS's value, and the spec's if different."""

    name: str
    expected: Any
    actual: Any
    desired: Any = _ABSENT

    @property
    def has_desired(self) -> bool:
        return self.desired is not _ABSENT

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "expected": to_jsonable(self.expected), "actual": to_jsonable(self.actual)}
        if self.has_desired:
            d["desired"] = to_jsonable(self.desired)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AttrDrift:
        return cls(d["name"], from_jsonable(d["expected"]), from_jsonable(d["actual"]),
                   from_jsonable(d["desired"]) if "desired" in d else _ABSENT)


@dataclass(frozen=True)
class ResourceDrift:
    """One resource that drifted. ``adoptable``: unmanaged, but the spec wants its address, so
    the next apply adopts it instead of creating a duplicate."""

    address: str
    kind: str
    status: str
    aws_id: str | None
    attributes: tuple[AttrDrift, ...] = ()
    adoptable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "kind": self.kind, "status": self.status, "aws_id": self.aws_id,
                "attributes": [a.to_dict() for a in self.attributes], "adoptable": self.adoptable}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResourceDrift:
        return cls(d["address"], d["kind"], d["status"], d.get("aws_id"),
                   tuple(AttrDrift.from_dict(a) for a in d.get("attributes") or ()),
                   bool(d.get("adoptable")))


@dataclass(frozen=True)
class DriftReport:
    """Every drifted resource of one cluster, and what the ignore list hid."""

    cluster: str
    resources: tuple[ResourceDrift, ...] = ()
    #: ``address`` or ``address: attribute`` entries the spec's ignore list accepted
    ignored: tuple[str, ...] = ()
    checked: int = 0

    @property
    def in_sync(self) -> bool:
        return not self.resources

    def by_status(self, status: str) -> tuple[ResourceDrift, ...]:
        return tuple(r for r in self.resources if r.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "in_sync": self.in_sync,
            "checked": self.checked,
            "summary": {s: len(self.by_status(s)) for s in (MODIFIED, MISSING, UNMANAGED)},
            "resources": [r.to_dict() for r in self.resources],
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        return cls(d["cluster"], tuple(ResourceDrift.from_dict(r) for r in d.get("resources") or ()),
                   tuple(d.get("ignored") or ()), int(d.get("checked") or 0))


def detect(
    state: State | None,
    live: Mapping[str, Live],
    ignore: Iterable[IgnoreRule] = (),
    *,
    cluster: str = "",
    desired: Mapping[str, Mapping[str, Any]] | None = None,
) -> DriftReport:
    """Compare the state with what exists. ``desired`` (address → the spec's resolved props, as
    the planner computed them) adds the spec's value to attributes where it differs from the
    state's, and marks unmanaged resources the spec wants as adoptable."""
    rules = tuple(ignore)
    desired = desired or {}
    in_state = dict(state.resources) if state else {}
    out: list[ResourceDrift] = []
    ignored: list[str] = []
    for address in sorted(set(in_state) | set(live)):
        rs, found = in_state.get(address), live.get(address)
        if ignored_whole(address, rules):
            if rs is None or found is None or _differences(rs.props, found.props, rs.id, found.id):
                ignored.append(address)
            continue
        if rs is None:
            assert found is not None
            out.append(ResourceDrift(address, found.kind, UNMANAGED, found.id, adoptable=address in desired))
            continue
        if found is None:
            out.append(ResourceDrift(address, rs.kind, MISSING, rs.id))
            continue
        raw = _differences(rs.props, found.props, rs.id, found.id)
        diffs = raw if not any(r.matches(address) for r in rules) else _differences(
            without_ignored(address, rs.props, rules), without_ignored(address, found.props, rules),
            rs.id, found.id)
        ignored.extend(f"{address}: {n}" for n in raw
                       if n not in diffs or canonical_json(diffs[n]) != canonical_json(raw[n]))
        attrs = []
        for name, (expected, actual) in sorted(diffs.items()):
            want = desired.get(address, {}).get(name, _ABSENT)
            if want is _ABSENT or contains_unknown(want) or canonical_json(want) == canonical_json(expected):
                want = _ABSENT
            attrs.append(AttrDrift(name, expected, actual, want))
        if attrs:
            out.append(ResourceDrift(address, rs.kind, MODIFIED, found.id, tuple(attrs)))
    return DriftReport(cluster or (state.cluster if state else ""), tuple(out), tuple(ignored),
                       checked=len(set(in_state) | set(live)))


def _differences(
    expected: Mapping[str, Any], actual: Mapping[str, Any], expected_id: str, actual_id: str
) -> dict[str, tuple[Any, Any]]:
    """name → (expected, actual) for each attribute of the state that AWS no longer matches."""
    out: dict[str, tuple[Any, Any]] = {}
    if expected_id != actual_id:
        out["id"] = (expected_id, actual_id)
    for name in sorted(expected):
        if contains_unknown(expected[name]):
            continue
        got = actual.get(name)
        if name not in actual or not (_same(expected[name], got)
                                      or canonical_json(expected[name]) == canonical_json(got)):
            out[name] = (expected[name], got)
    return out


_EXACT = frozenset({str, int, bool, type(None)})


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are plain data of the very same types and values, so that their canonical JSON
    is the same: the quick answer for the usual attribute that did not drift. False says only "not
    known": ``canonical_json`` decides (a tuple and a list, a Ref, a float)."""
    t = type(a)
    if t is not type(b):
        return False
    if t in _EXACT:
        return bool(a == b)
    if t is dict:
        return a.keys() == b.keys() and all(type(k) is str and _same(v, b[k]) for k, v in a.items())
    if t is list or t is tuple:
        return len(a) == len(b) and all(map(_same, a, b))
    return False


def accept_ignored(
    address: str, after: Mapping[str, Any], actual: Mapping[str, Any], ignore: Iterable[IgnoreRule]
) -> dict[str, Any]:
    """The planner's side of the ignore list: ``after`` with each ignored attribute (or map key)
    taken from AWS, so apply does not undo an accepted difference (Terraform's ignore_changes)."""
    out = dict(after)
    for name, key in _ignored(address, [n for n in after if n in actual], ignore):
        if key is None:
            out[name] = actual[name]
        elif isinstance(out[name], Mapping) and isinstance(actual[name], Mapping):
            out[name] = {**{a: v for a, v in out[name].items() if not key.fullmatch(a)},
                         **{a: v for a, v in actual[name].items() if key.fullmatch(a)}}
    return out
