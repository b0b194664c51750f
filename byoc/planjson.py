"""The plan JSON's values in the Terraform AWS provider's shapes: the ``Shaper`` seam the caller
injects (built from the resource kinds; the pure core never imports them), and the marks Terraform
puts beside values: unknown as whole attributes, sensitivity objects shaped like the values.

Without a shaper (unit tests with fake kinds) values pass through, JSON policy documents as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from byoc.model import UNKNOWN, Companion, Ref, contains_unknown, substitute, to_jsonable


class Shaper(Protocol):
    """byoc's values of a kind in the provider's shape, and the companion resources they hold."""

    def values(self, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` of ``kind`` (all props, or a few in a drift report) in the provider's shape."""
        ...

    def companions(self, kind: str, values: Mapping[str, Any], aws_id: str | None) -> list[Companion]:
        """The provider's separate resources that ``values`` hold inline (public access block …)."""
        ...


class PassThrough:
    """The shaper used when none is given: values unchanged but IAM-style policy documents as
    JSON text (what checkov's and OPA's Terraform policies parse); no companions."""

    def values(self, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: policy_text(v) for k, v in values.items()}

    def companions(self, kind: str, values: Mapping[str, Any], aws_id: str | None) -> list[Companion]:
        return []


def policy_text(value: Any) -> Any:
    """Policy documents (``Version`` and ``Statement``) inside ``value`` as JSON text."""
    if isinstance(value, Mapping):
        if "Statement" in value and "Version" in value and not contains_unknown(value):
            return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))
        return {k: policy_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [policy_text(v) for v in value]
    return value


def shape(shaper: Shaper, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` in the provider's shape, with unknown parts made whole attributes."""
    out = whole_unknown(shaper.values(kind, values))
    assert isinstance(out, dict)
    return out


def whole_unknown(value: Any) -> Any:
    """Terraform's unknowns: a string or a list of plain values with any unknown part is unknown
    as a whole; objects (and blocks, lists of objects) keep their known parts."""
    if isinstance(value, Mapping):
        return {k: whole_unknown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if any(not isinstance(v, Mapping) and contains_unknown(v) for v in value):
            return UNKNOWN
        return [whole_unknown(v) for v in value]
    return value


def split_unknown(value: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """Terraform's (after, after_unknown): unknown values left out of one, marked true in the other."""
    if value is None:
        return None, {}

    def known(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: known(x) for k, x in v.items() if x is not UNKNOWN}
        if isinstance(v, list | tuple):
            return [known(x) for x in v]
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


def sensitivity(value: Any) -> Any:
    """Terraform's ``*_sensitive`` for values without secrets: objects and lists shaped like the
    value (``{"tags": {}, "ingress": [{"cidr_blocks": [false]}]}``), leaves false and left out of
    objects; false for no value at all."""
    if value is None:
        return False
    if isinstance(value, Mapping):
        return {k: sensitivity(v) for k, v in value.items() if isinstance(v, Mapping | list | tuple)}
    if isinstance(value, list | tuple):
        return [sensitivity(v) if isinstance(v, Mapping | list | tuple) else False for v in value]
    return False


_TOKEN = re.compile(r"@@byoc-ref-(\d+)@@")


def expressions(shaper: Shaper, kind: str, desired: Mapping[str, Any]) -> dict[str, Any]:
    """Terraform's configuration ``expressions`` of desired props, per provider attribute: a
    constant value, or the references it is made of (``["aws_vpc.main.id", "aws_vpc.main"]``)."""
    refs: list[str] = []

    def token(ref: Ref) -> str:
        refs.append(f"{ref.address}.{ref.attr}")
        return f"@@byoc-ref-{len(refs) - 1}@@"

    out: dict[str, Any] = {}
    for name, value in shaper.values(kind, substitute(desired, token)).items():
        text = json.dumps(to_jsonable(value), default=str)
        found = sorted({refs[int(i)] for i in _TOKEN.findall(text)})
        if found:
            out[name] = {"references": found + _referenced(found)}
        else:
            out[name] = {"constant_value": to_jsonable(value)}
    return out


def _referenced(found: list[str]) -> list[str]:
    """The resources ``found``'s attribute references name, as Terraform lists them: the instance
    (``aws_eip.nat["a"]``) and, for a counted or for_each instance, its block (``aws_eip.nat``)."""
    instances = {r.rsplit(".", 1)[0] for r in found}
    return sorted(instances | {i.split("[", 1)[0] for i in instances})


def companion_expressions(c: Companion, owner: str) -> dict[str, Any]:
    """A companion's configuration: its references to the owner (``bucket = aws_s3_bucket.data.id``)
    and constants for the rest."""
    out: dict[str, Any] = {}
    for name, value in c.values.items():
        if name in c.refs:
            out[name] = {"references": [f"{owner}.{c.refs[name]}", owner]}
        elif value is not UNKNOWN:
            out[name] = {"constant_value": to_jsonable(value)}
    return out
