"""The spec reference: the spec's JSON Schema rendered as Markdown, one section per top-level key.

``spec_reference(schema)`` is pure (schema in, text out); ``main()`` reads schemas/spec.schema.json
and writes docs/spec-reference.md. ``scripts/gen-docs`` runs it; tests/test_docs.py fails when the
committed file differs from what the schema gives.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = "schemas/spec.schema.json"
OUTPUT_PATH = "docs/spec-reference.md"
GENERATOR = "scripts/gen-docs"

Schema = Mapping[str, Any]

_TYPE_WORDS = {
    "object": "mapping",
    "array": "list",
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
}
_COLUMNS = ("Field", "Type", "Required", "Default", "Allowed", "Description")


@dataclass(frozen=True)
class Field:
    """One row of the reference: a key of the spec, by its dotted path."""

    path: str
    type: str
    required: str
    default: str
    allowed: str
    description: str


# -- text helpers ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"[\\*|<>\[\]`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _text(text: str) -> str:
    """Plain text made safe for a Markdown table cell (no emphasis, links or cell breaks)."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(text.split()))


def _code(text: str) -> str:
    """An inline code span that survives a table cell."""
    body = text.replace("|", "\\|")
    fence = "``" if "`" in body else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _value(value: Any) -> str:
    """A schema value as the YAML a spec would hold, in a code span."""
    plain = isinstance(value, str) and value and value.strip() == value
    return _code(value if plain else json.dumps(value))


def _count(n: Any, word: str) -> str:
    plural = word[:-1] + "ies" if word.endswith("y") else word + "s"
    return f"{n} {word if n == 1 else plural}"


def _first_sentence(text: str) -> str:
    head = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return _sentence(head)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


# -- reading the schema ---------------------------------------------------------------------------


def _resolve(node: Schema, root: Schema) -> Schema:
    """``node`` with a local ``$ref`` merged in (the node's own keys win)."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target: Schema = root["$defs"][ref.removeprefix("#/$defs/")]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _types(node: Schema) -> list[str]:
    t = node.get("type")
    if isinstance(t, list):
        return [str(x) for x in t]
    if isinstance(t, str):
        return [t]
    values = list(node.get("enum", ())) + ([node["const"]] if "const" in node else [])
    found: list[str] = []
    for v in values:
        name = ("null" if v is None else "boolean" if isinstance(v, bool)
                else "integer" if isinstance(v, int) else "number" if isinstance(v, float) else "string")
        if name not in found:
            found.append(name)
    return found


def _type_words(node: Schema, root: Schema) -> str:
    words = []
    for t in _types(node):
        if t == "array" and isinstance(node.get("items"), Mapping):
            item = _type_words(_resolve(node["items"], root), root)
            words.append(f"list of {item}s" if item and " " not in item else "list")
        elif t == "object" and isinstance(node.get("additionalProperties"), Mapping):
            value = _type_words(_resolve(node["additionalProperties"], root), root)
            words.append(f"mapping of {value}s" if value and " " not in value else "mapping")
        else:
            words.append(_TYPE_WORDS.get(t, t))
    return " or ".join(words)


def _range(node: Schema, low: str, high: str, unit: str = "") -> str:
    """``low``..``high`` of ``node`` in words, counting ``unit`` (a singular noun) if given."""
    lo, hi = node.get(low), node.get(high)
    if lo is not None and hi is not None:
        return f"{lo} to {_count(hi, unit)}" if unit else f"{lo} to {hi}"
    if lo is not None:
        return f"at least {_count(lo, unit)}" if unit else f"at least {lo}"
    if hi is not None:
        return f"at most {_count(hi, unit)}" if unit else f"at most {hi}"
    return ""


def _allowed(node: Schema, root: Schema) -> str:
    """What the schema allows, in words: x-allowed first, then what it does not already say."""
    parts: list[str] = []
    if node.get("x-allowed"):
        parts.append(_text(str(node["x-allowed"])))
    else:
        if "enum" in node:
            parts.append("one of " + ", ".join(_value(v) for v in node["enum"]))
        if "const" in node:
            parts.append("exactly " + _value(node["const"]))
        length = _range(node, "minLength", "maxLength", "character")
        if length:
            parts.append(length)
        if node.get("pattern"):
            parts.append("matching " + _code(str(node["pattern"])))
    numbers = _range(node, "minimum", "maximum")
    if numbers and "x-allowed" not in node:
        parts.append(numbers)
    items = _range(node, "minItems", "maxItems", "item")
    if items:
        parts.append(items)
    if node.get("uniqueItems"):
        parts.append("no duplicates")
    entries = _range(node, "minProperties", "maxProperties", "entry")
    if entries:
        parts.append(entries)
    names = node.get("propertyNames")
    if isinstance(names, Mapping):
        parts.append("names: " + (_allowed(names, root) or "any"))
    item = node.get("items")
    if isinstance(item, Mapping):
        item = _resolve(item, root)
        if "properties" not in item:
            words = _allowed(item, root)
            if words:
                parts.append("each: " + words)
    return "; ".join(parts)


def _conditions(node: Schema) -> dict[str, str]:
    """Keys an object requires only in some cases (``allOf`` of if/then), with the case in words."""
    out: dict[str, str] = {}
    for rule in node.get("allOf", ()):
        then = rule.get("then") if isinstance(rule, Mapping) else None
        if not isinstance(then, Mapping):
            continue
        why = str(then.get("x-why") or rule.get("x-why") or "in some cases (see the schema)")
        for key in then.get("required", ()):
            out[str(key)] = f"{out[key]}; {why}" if key in out else why
    return out


def _row(path: str, node: Schema, required: str, root: Schema, extra: str = "") -> Field:
    description = _sentence(str(node.get("description", "")))
    if node.get("x-why"):
        description += f" Why: {_sentence(str(node['x-why']))}"
    if extra:
        description += f" {extra}"
    return Field(
        path=path,
        type=_type_words(node, root),
        required=required,
        default=_value(node["default"]) if "default" in node else "",
        allowed=_allowed(node, root),
        description=_text(description.strip()),
    )


def _fields(path: str, node: Schema, required: str, root: Schema) -> Iterator[Field]:
    """The field at ``path`` and everything under it, depth first in schema order."""
    node = _resolve(node, root)
    item = node.get("items")
    item = _resolve(item, root) if isinstance(item, Mapping) else None
    extra = ""
    if item is not None and item.get("description"):
        extra = "Each item: " + _sentence(str(item["description"]))
    yield _row(path, node, required, root, extra)
    yield from _children(path, node, root)
    if item is not None and "properties" in item:
        yield from _children(path + "[]", item, root)
    values = node.get("additionalProperties")
    if isinstance(values, Mapping):
        yield _row(path + ".<name>", _resolve(values, root), "no", root)


def _children(path: str, node: Schema, root: Schema) -> Iterator[Field]:
    required = {str(k) for k in node.get("required", ())}
    conditional = _conditions(node)
    for key, sub in (node.get("properties") or {}).items():
        need = "yes" if key in required else conditional.get(key, "no")
        yield from _fields(f"{path}.{key}" if path else key, sub, need, root)


# -- rendering ------------------------------------------------------------------------------------


def _table(rows: Sequence[Field]) -> list[str]:
    out = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for f in rows:
        cells = (_code(f.path), f.type, f.required, f.default or "—", f.allowed or "—",
                 f.description or "—")
        out.append("| " + " | ".join(cells) + " |")
    return out


def _section(key: str, node: Schema, required: bool, root: Schema) -> list[str]:
    node = _resolve(node, root)
    need = "yes" if required else "no"
    out = [f"## {key}", ""]
    nested = "properties" in node or isinstance(node.get("additionalProperties"), Mapping)
    if not nested:  # a plain value: its one row says everything
        return out + _table(list(_fields(key, node, need, root))) + [""]
    if node.get("description"):
        out += [_text(_sentence(str(node["description"]))), ""]
    facts = [_code(key), _type_words(node, root), "required" if required else "optional"]
    if "default" in node:
        facts.append(f"default {_value(node['default'])}")
    out += [" · ".join(facts) + ".", ""]
    allowed = _allowed(node, root)
    if allowed:
        out += [f"Allowed: {allowed}.", ""]
    return out + _table(list(_fields(key, node, need, root))[1:]) + [""]


def spec_reference(schema: Mapping[str, Any]) -> str:
    """The whole reference as Markdown: a header, a contents list, then one section per
    top-level key of the schema in schema order, each a table of its fields."""
    required = {str(k) for k in schema.get("required", ())}
    props: Mapping[str, Any] = schema.get("properties") or {}
    out = [
        "# Spec reference",
        "",
        f"<!-- Generated from {SCHEMA_PATH} by {GENERATOR}. Do not edit by hand. -->",
        "",
        f"> Generated from `{SCHEMA_PATH}` by `{GENERATOR}`. Do not edit this file by hand: change "
        f"the schema, then run `{GENERATOR}`. `tests/test_docs.py` fails when this file is out of date.",
        "",
    ]
    if schema.get("description"):
        out += [_text(_sentence(str(schema["description"]))), ""]
    out += [
        "A spec is one YAML file. Fields are written by their dotted path: `compute.instance_count` "
        "is `instance_count` under `compute`; `[]` stands for every item of a list and `<name>` for "
        "any key of a mapping. **Required** says whether a key must be present when its parent is. "
        "Every `byoc` command that reads a spec also takes `--set key.path=value`.",
        "",
    ]
    if schema.get("additionalProperties") is False:
        out += ["Keys that this reference does not list are rejected.", ""]
    if required:
        names = ", ".join(f"`{k}`" for k in props if k in required)
        out += [f"Required sections: {names}.", ""]
    out += ["## Contents", ""]
    for key, sub in props.items():
        first = _first_sentence(str(_resolve(sub, schema).get("description", "")))
        out.append(f"- [{key}](#{key.lower()})" + (f": {_text(first)}" if first else ""))
    out.append("")
    for key, sub in props.items():
        out += _section(key, sub, key in required, schema)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write docs/spec-reference.md from schemas/spec.schema.json (paths relative to the checkout)."""
    parser = argparse.ArgumentParser(prog="python -m byoc.docgen", description=main.__doc__)
    parser.add_argument("--schema", type=Path, default=ROOT / SCHEMA_PATH, help="the JSON Schema to read")
    parser.add_argument("--out", type=Path, default=ROOT / OUTPUT_PATH, help="the Markdown file to write")
    args = parser.parse_args(argv)
    schema = json.loads(Path(args.schema).read_text(encoding="utf-8"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(spec_reference(schema), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
