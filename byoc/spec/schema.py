"""The spec's JSON Schema: loading it, filling its defaults, and wording its errors as Issues.

Patterns follow ECMA-262 as editors apply them (``$`` is the end of the text, ``\\d`` is ASCII),
and a field's ``x-allowed`` text says in words what its pattern allows.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from byoc.spec.issues import Issue, Path

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@lru_cache(maxsize=1)
def spec_schema() -> dict[str, Any]:
    """The schema shipped with byoc (``schemas/spec.schema.json``)."""
    from importlib import resources

    text = resources.files("byoc").joinpath("_schemas/spec.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _resolve(sub: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = sub.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target: Mapping[str, Any] = root["$defs"][ref.removeprefix("#/$defs/")]
        return {**target, **{k: v for k, v in sub.items() if k != "$ref"}}
    return sub


def fill_defaults(value: Any, schema: Mapping[str, Any] | None = None) -> None:
    """Fill every schema default into ``value`` in place, recursing into objects and list items."""
    root = spec_schema()
    _fill(value, schema or root, root)


def _fill(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            sub = _resolve(sub, root)
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _fill(value[key], sub, root)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _fill(item, schema["items"], root)


@lru_cache(maxsize=64)
def _ecma(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern, re.ASCII)


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not _ecma(patrn).search(instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    def is_integer(checker: Any, instance: Any) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer)
    cls = validators.extend(
        Draft202012Validator, validators={"pattern": pattern}, type_checker=checker
    )
    return cls(spec_schema())


def show(value: Any, limit: int = 60) -> str:
    """A value as a user wrote it: strings quoted, long ones cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    if isinstance(value, int | float):
        return repr(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """What a value is, for 'expected X, got Y'."""
    if isinstance(value, bool):
        return f"boolean {show(value)}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"string {show(value)}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def schema_issues(data: Any) -> list[Issue]:
    """Every schema error in ``data`` (defaults already filled), worded for a person.

    A string that breaks several rules at once (length and pattern) is reported once.
    """
    root = spec_schema()
    out: list[Issue] = []
    seen: set[tuple[Path, Path, str]] = set()
    for error in _validator().iter_errors(data):
        kind = "string" if error.validator in _STRING_KEYWORDS else ""
        for issue in _word(error, root):
            key = (issue.field, issue.where, kind or issue.message)
            if key not in seen:
                seen.add(key)
                out.append(issue)
    return out


_STRING_KEYWORDS = frozenset({"minLength", "maxLength", "pattern"})


def _expected(allowed: Any) -> str:
    return f": expected {allowed}" if allowed else ""


def _word(error: Any, root: Mapping[str, Any]) -> list[Issue]:
    path: Path = tuple(error.absolute_path)
    keyword: str = error.validator
    value = error.validator_value
    inst = error.instance
    sub: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    allowed = sub.get("x-allowed")

    if "propertyNames" in error.relative_schema_path:
        text = f"key {show(inst)} is not allowed{_expected(allowed)}"
        return [Issue(path, text, at=(*path, inst))]
    if keyword == "type":
        types = [value] if isinstance(value, str) else list(value)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        text = f"expected {words}, got {describe(inst)}"
        if "string" in types and isinstance(inst, int | float) and not isinstance(inst, bool):
            text += "; put the value in quotes"
        elif "string" in types and isinstance(inst, bool):
            text += " (YAML reads yes/no/on/off/true/false as booleans); put the value in quotes"
        elif "object" in types and inst is None:
            text += " (an empty section: remove it or give it fields)"
        elif "array" in types and isinstance(inst, str):
            text += f"; write a list such as [{inst}]"
        return [Issue(path, text)]
    if keyword == "required":
        missing = [k for k in value if isinstance(inst, Mapping) and k not in inst]
        props = sub.get("properties", {})
        if not props:
            props = _properties_at(root, path)
        out = []
        for key in missing:
            hint = _resolve(props.get(key, {}), root).get("x-allowed")
            why = sub.get("x-why")
            text = "is required"
            if why:
                text += f" {why}"
            if hint:
                text += f" ({hint})"
            out.append(Issue((*path, key), text, at=path))
        return out
    if keyword == "additionalProperties" and value is False and isinstance(inst, Mapping):
        known = list(sub.get("properties", {}))
        out = []
        for key in inst:
            if key in known:
                continue
            what = "unknown top-level key" if not path else "unknown key"
            close = suggest(str(key), known)
            if close:
                text = f"{what} {show(key)} (did you mean {show(close)}?)"
            else:
                text = f"{what} {show(key)}; allowed keys: {', '.join(known)}"
            out.append(Issue(path, text, at=(*path, key)))
        return out
    if keyword == "enum":
        return [Issue(path, f"{show(inst)} is not one of: {', '.join(_plain(v) for v in value)}")]
    if keyword == "const":
        expect = allowed or _plain(value)
        return [Issue(path, f"{show(inst)} is not supported: expected {expect}")]
    if keyword in ("minimum", "exclusiveMinimum"):
        word = "the minimum" if keyword == "minimum" else "the exclusive minimum"
        rel = "less than" if keyword == "minimum" else "not greater than"
        return [Issue(path, f"{show(inst)} is {rel} {word} of {_plain(value)}")]
    if keyword in ("maximum", "exclusiveMaximum"):
        word = "the maximum" if keyword == "maximum" else "the exclusive maximum"
        rel = "greater than" if keyword == "maximum" else "not less than"
        return [Issue(path, f"{show(inst)} is {rel} {word} of {_plain(value)}")]
    if keyword in ("minLength", "maxLength"):
        size = len(inst)
        short = keyword == "minLength"
        what = "too short" if short else "too long"
        text = f"{show(inst)} is {what} ({size} character{'s' if size != 1 else ''}"
        if allowed:
            text += f"){_expected(allowed)}"
        else:
            text += f"; at {'least' if short else 'most'} {value})"
        return [Issue(path, text)]
    if keyword == "pattern":
        text = f"{show(inst)} is not valid{_expected(allowed)}"
        if not allowed:
            text += f": must match {value}"
        return [Issue(path, text)]
    if keyword == "minItems":
        return [Issue(path, f"needs at least {value} item{'s' if value != 1 else ''}")]
    if keyword == "maxItems":
        return [Issue(path, f"has {len(inst)} items; at most {value} are allowed")]
    if keyword == "maxProperties":
        return [Issue(path, f"has {len(inst)} entries; at most {value} are allowed")]
    if keyword == "uniqueItems":
        return _duplicates(path, inst)
    return [Issue(path, str(error.message))]


def suggest(word: str, known: list[str]) -> str | None:
    """The known key the user most likely meant: a near spelling, a prefix, or another case."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    lower = word.lower().replace("-", "_")
    for key in known:
        if lower == key or (len(lower) >= 3 and (key.startswith(lower) or lower.startswith(key))):
            return key
    close = difflib.get_close_matches(lower, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else show(value)


def _properties_at(root: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    sub: Mapping[str, Any] = root
    for part in path:
        sub = _resolve(sub, root)
        inner = sub.get("items", {}) if isinstance(part, int) else None
        sub = inner if inner is not None else sub.get("properties", {}).get(part, {})
    props: Mapping[str, Any] = _resolve(sub, root).get("properties", {})
    return props


def _duplicates(path: Path, items: list[Any]) -> list[Issue]:
    seen: dict[str, int] = {}
    out = []
    for index, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            text = f"{show(item)} is listed twice (also item [{seen[key]}])"
            out.append(Issue((*path, index), text))
        else:
            seen[key] = index
    return out
