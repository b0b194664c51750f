"""Core values of the pure engine: addresses, references, unknowns, desired and live resources.

A desired ``Resource`` holds properties that may contain ``Ref`` values (another node's
attribute, known only once that node exists). ``UNKNOWN`` marks a value that will be known
after apply. ``Live`` is what discovery found in AWS, normalised to the desired shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ADDRESS_RE = re.compile(r'^(?P<kind>[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)(?:\["(?P<key>[^"\\]+)"\])?$')


#: how many AWS operations run at once unless ``--parallelism`` says otherwise: most of an apply is
#: waiting on AWS, and the SDK's adaptive retry mode slows down on throttling by itself
DEFAULT_PARALLELISM = 20


def default_state_key(cluster: str) -> str:
    """The object key of a cluster's state in the s3 backend when ``state.key`` is not set."""
    return f"byoc/{cluster}/state.json"


def partition(region: str) -> str:
    """The AWS partition of a region, for ARNs: aws, aws-cn or aws-us-gov."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def make_address(kind: str, name: str, key: str | None = None) -> str:
    """Terraform-style address: ``aws_subnet.private["us-west-2a"]``."""
    return f'{kind}.{name}["{key}"]' if key is not None else f"{kind}.{name}"


def parse_address(address: str) -> tuple[str, str, str | None]:
    """Split an address into (kind, name, key); ValueError when it is not one."""
    m = ADDRESS_RE.match(address)
    if not m:
        raise ValueError(f"{address!r} is not a resource address (expected kind.name or kind.name[\"key\"])")
    return m["kind"], m["name"], m["key"]


class _Unknown:
    """The single marker for a value known only after apply."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Ref:
    """A reference to attribute ``attr`` of the node at ``address``; references are the graph's edges."""

    address: str
    attr: str = "id"

    def __str__(self) -> str:
        return f"${{{self.address}.{self.attr}}}"


@dataclass(frozen=True)
class Join:
    """Text made of literal strings and references, e.g. an ARN plus ``/*`` or a script that
    embeds a volume id; resolves to the concatenation, or UNKNOWN while any part is unknown."""

    parts: tuple[Any, ...]

    def resolve(self, resolve: Callable[[Ref], Any]) -> Any:
        values = [substitute(p, resolve) for p in self.parts]
        if any(v is UNKNOWN for v in values):
            return UNKNOWN
        return "".join(str(v) for v in values)


@dataclass(frozen=True)
class Sorted:
    """A list whose order AWS does not keep (subnet ids, group ids): sorted once resolved, so a
    list of references compares equal to AWS's answer."""

    items: tuple[Any, ...]

    def resolve(self, resolve: Callable[[Ref], Any]) -> Any:
        values = [substitute(v, resolve) for v in self.items]
        if any(v is UNKNOWN for v in values):
            return values
        return sorted(values, key=canonical_json)


def walk_refs(value: Any) -> Iterator[Ref]:
    """Every Ref inside a nested value of dicts, lists and scalars."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Join):
        yield from walk_refs(value.parts)
    elif isinstance(value, Sorted):
        yield from walk_refs(value.items)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from walk_refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from walk_refs(v)


def substitute(value: Any, resolve: Callable[[Ref], Any]) -> Any:
    """A copy of ``value`` with each Ref replaced by ``resolve(ref)``."""
    if isinstance(value, Ref):
        return resolve(value)
    if isinstance(value, Join | Sorted):
        return value.resolve(resolve)
    if isinstance(value, Mapping):
        return {k: substitute(v, resolve) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, resolve) for v in value]
    return value


def contains_unknown(value: Any) -> bool:
    """True when ``value`` holds UNKNOWN anywhere."""
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def to_jsonable(value: Any) -> Any:
    """Encode Refs and UNKNOWN for JSON (``{"$ref": ...}``, ``{"$unknown": true}``)."""
    if isinstance(value, Ref):
        return {"$ref": value.address, "attr": value.attr}
    if isinstance(value, Join):
        return {"$join": [to_jsonable(p) for p in value.parts]}
    if isinstance(value, Sorted):
        return {"$sorted": [to_jsonable(p) for p in value.items]}
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(value: Any) -> Any:
    """Inverse of ``to_jsonable``."""
    if isinstance(value, dict):
        if set(value) == {"$ref", "attr"}:
            return Ref(value["$ref"], value["attr"])
        if set(value) == {"$join"}:
            return Join(tuple(from_jsonable(p) for p in value["$join"]))
        if set(value) == {"$sorted"}:
            return Sorted(tuple(from_jsonable(p) for p in value["$sorted"]))
        if value == {"$unknown": True}:
            return UNKNOWN
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Stable JSON text used for hashing and comparing."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Resource:
    """A desired node of the graph.

    ``props`` are the properties byoc manages (Terraform's argument names). ``depends_on``
    adds ordering edges that no reference expresses (AWS's hidden ordering, e.g. a NAT
    gateway needs the internet gateway attached). ``protected`` resources hold data and are
    never deleted or replaced without an explicit flag.
    """

    address: str
    kind: str
    props: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    protected: bool = False

    def dependencies(self) -> set[str]:
        """Addresses this node needs before it can be created."""
        return {r.address for r in walk_refs(self.props)} | set(self.depends_on)


@dataclass(frozen=True)
class Live:
    """A resource as found in AWS.

    ``id`` is the AWS id (or name, for kinds identified by name). ``props`` are normalised
    into the desired shape; ``attrs`` are computed values others may reference (``id``,
    ``arn``, ``dns_name`` …) and always include ``id``.
    """

    address: str
    kind: str
    id: str
    props: Mapping[str, Any]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def attr(self, name: str) -> Any:
        if name == "id":
            return self.id
        if name in self.attrs:
            return self.attrs[name]
        return self.props.get(name, UNKNOWN)


@dataclass(frozen=True)
class Companion:
    """A resource of the Terraform AWS provider that byoc manages inline in another kind (the
    bucket's public access block, the KMS key's alias): the plan JSON shows it beside its owner,
    derived from the owner's values. ``refs`` names, per attribute, the owner's attribute it
    references (the ``configuration`` shows the reference, as ``bucket = aws_s3_bucket.data.id``)."""

    kind: str
    values: Mapping[str, Any]
    refs: Mapping[str, str] = field(default_factory=dict)
