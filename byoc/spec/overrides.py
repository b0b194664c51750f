"""``--set key.path=value`` overrides, applied to the spec's values before validation.

The value is read as YAML (``3`` is an integer, ``true`` a boolean, ``[a, b]`` a list, empty is
null); missing mappings along the path are created; a path through a list or a scalar is refused.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from byoc.errors import SpecError
from byoc.spec.issues import Issue, Locator, Override, Path, dotted, plural
from byoc.spec.yamlpos import YamlError, parse_value


class OverrideError(ValueError):
    """An override that cannot be parsed or applied; str() says why."""


def parse_override(raw: str) -> tuple[Path, Any]:
    """(path, value) of ``key.path=value``."""
    name, sep, text = raw.partition("=")
    if not sep:
        raise OverrideError("expected key.path=value (there is no '=')")
    name = name.strip()
    if not name:
        raise OverrideError("the key path before '=' is empty")
    parts = [part.strip() for part in name.split(".")]
    if any(not part for part in parts):
        raise OverrideError(f"the key path {name!r} has an empty part")
    try:
        value = parse_value(text)
    except YamlError as exc:
        detail = exc.message.removeprefix("invalid YAML")
        if detail == exc.message:
            detail = f": {detail}"
        raise OverrideError(f"the value is not valid YAML{detail}") from None
    return tuple(parts), value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _set(data: dict[str, Any], path: Path, value: Any) -> None:
    node = data
    for index, part in enumerate(path[:-1]):
        assert isinstance(part, str)
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            here = dotted(path[: index + 1])
            hint = ""
            if isinstance(child, list):
                hint = f"; set the whole list instead, such as {here}=[a, b]"
            raise OverrideError(f"cannot be set: {here} is {_kind(child)}, not a mapping{hint}")
        node = child
    last = path[-1]
    assert isinstance(last, str)
    node[last] = value


def apply(data: dict[str, Any], overrides: Sequence[str]) -> tuple[list[Override], list[Issue]]:
    """Apply ``overrides`` to ``data`` in place, in order; (the applied ones, the problems)."""
    applied: list[Override] = []
    issues: list[Issue] = []
    for raw in overrides:
        try:
            path, value = parse_override(raw)
        except OverrideError as exc:
            issues.append(Issue((), str(exc), origin=raw))
            continue
        try:
            _set(data, path, value)
        except OverrideError as exc:
            issues.append(Issue(path, str(exc), origin=raw))
            continue
        applied.append(Override(raw, path))
    return applied, issues


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``overrides`` applied; SpecError listing every bad override."""
    result = copy.deepcopy(dict(data))
    applied, issues = apply(result, overrides)
    if issues:
        locator = Locator("--set", overrides=applied)
        locator.given = list(overrides)
        lines = locator.format(issues)
        raise SpecError(f"--set: {plural(len(lines), 'problem')}", lines)
    return result
